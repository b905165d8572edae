"""`training-files serve` leaves what start-up made out of later garbage collections (a full
collection walking the schema, modules and pools held the event loop for about 60 ms); an
app made any other way (tests, embedders: many apps in one process) freezes nothing."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphql_api.app import create_app

from .conftest import make_settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    if gc.get_freeze_count():
        pytest.skip("something in this test process froze the heap already")
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
async def test_only_a_served_app_freezes_its_start_up_heap(
    pg_data_dir: Path, tmp_path: Path
) -> None:
    settings = make_settings(pg_data_dir, tmp_path / "storage")

    plain = create_app(settings)
    async with plain.router.lifespan_context(plain):
        assert gc.get_freeze_count() == 0

    served = create_app(settings, migrate=False, freeze_heap=True)
    async with served.router.lifespan_context(served):
        frozen = gc.get_freeze_count()
        # Everything alive at the end of start-up (this test process's too), and a full
        # collection now walks only what was made since.
        assert frozen > 50_000
        assert len(gc.get_objects()) < frozen // 5
