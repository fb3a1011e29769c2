"""The minimum cell size, defined once for every layer (the disclosure rule itself lives in
:mod:`survey_weights.profiles.cells`; the data layer, below it, masks small counts with the same number)."""

from __future__ import annotations

#: Groups, classes, leaves and margin levels with fewer respondents are withheld (or their counts masked).
DEFAULT_MIN_CELL_SIZE: int = 10
