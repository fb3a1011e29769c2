"""Weight profiles: derivation from a fit (safety rule, intervals), export/import, and the torch-free training
specification that carries a profile's weights and provenance to the MODPO engine."""

from __future__ import annotations

from .export import SCHEMA_VERSION, export_profiles, read_profiles
from .profile import WeightProfile, derive_profile

__all__ = ["SCHEMA_VERSION", "WeightProfile", "derive_profile", "export_profiles", "read_profiles"]
