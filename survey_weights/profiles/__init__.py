"""Weight profiles: derivation from a fit (safety rule, the one interval recipe for a weight), export/import, and
the torch-free training specification that carries a profile's weights and provenance to the MODPO engine."""

from __future__ import annotations

from .export import SCHEMA_VERSION, export_profiles, read_profiles
from .intervals import logit_interval, weight_intervals
from .profile import WeightProfile, derive_profile

__all__ = [
    "SCHEMA_VERSION", "WeightProfile", "derive_profile", "export_profiles", "logit_interval", "read_profiles",
    "weight_intervals",
]
