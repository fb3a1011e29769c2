"""Model fitting: Plackett-Luce (with ties) and Bradley-Terry.

Public: :func:`fit_plackett_luce`, :func:`fit_bradley_terry`, :func:`fit_best_worst`,
:func:`~.tie_sensitivity.tie_sensitivity`.  Internals for other modules (group fits, trees, mixtures, bootstrap):
:class:`~._likelihood.PLDesign`, :class:`~._likelihood.BTDesign`,
:func:`~.plackett_luce.fit_design` and :func:`~._optim.optimize`.
"""

from __future__ import annotations

from .best_worst import fit_best_worst
from .bradley_terry import fit_bradley_terry
from .plackett_luce import fit_design, fit_plackett_luce
from .tie_sensitivity import tie_sensitivity

__all__ = ["fit_best_worst", "fit_plackett_luce", "fit_bradley_terry", "fit_design", "tie_sensitivity"]
