"""Alias kept for ``survey_weights.simulate.simulate_survey`` (a public path): the simulator lives in
:mod:`survey_weights.synthetic.survey`."""

from __future__ import annotations

from .synthetic.survey import *  # noqa: F403 - the one alias module the package keeps
from .synthetic.survey import __all__  # noqa: F401
