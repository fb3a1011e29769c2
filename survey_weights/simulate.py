"""Alias kept for ``survey_weights.simulate.simulate_survey`` (a public path): the simulators live in
:mod:`survey_weights.synthetic.survey` and :mod:`survey_weights.synthetic.best_worst`."""

from __future__ import annotations

from .synthetic.best_worst import *  # noqa: F403 - the one alias module the package keeps
from .synthetic.best_worst import __all__ as _bw_all
from .synthetic.survey import *  # noqa: F403
from .synthetic.survey import __all__ as _survey_all

__all__ = [*_survey_all, *_bw_all]
