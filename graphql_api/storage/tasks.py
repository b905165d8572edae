"""Running independent steps of one storage call concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def gather(*steps: Coroutine[Any, Any, T]) -> list[T]:
    """Run `steps` concurrently; their results in order. The first failure cancels the others,
    waits for them to stop, and is raised as itself (not in an ExceptionGroup), so callers
    see one storage failure as they would from one step."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(step) for step in steps]
    except BaseExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return [task.result() for task in tasks]
