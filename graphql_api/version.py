"""The installed package's version, as its metadata says (what `pip show graphql-api` prints)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import version

DISTRIBUTION = "graphql-api"


@cache
def package_version() -> str:
    return version(DISTRIBUTION)
