"""The long-lived resources one server process shares across requests."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings
from .db.database import Database
from .storage.base import Storage


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    storage: Storage
