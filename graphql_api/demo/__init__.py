"""Deterministic generator of synthetic *enriched conversation* files.

The files are shaped like the output of the upstream enrichment pipeline (one coaching
conversation per file, `fp_conversation_<uuid>.json`): `dataset_metadata`,
`consultant_profile`, `training_pairs` and, for most files, `input_parameters`. The words come
from the sentence banks in `data/`, the names from the domain vocabulary; nothing is copied
from real conversations.
"""

from __future__ import annotations

from .generator import generate_conversation, write_demo_set

__all__ = ["generate_conversation", "write_demo_set"]
