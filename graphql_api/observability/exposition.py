"""`/metrics` in Prometheus' text format, for one process or for every worker of
`serve --workers N`.

Workers are separate processes: each writes its values to files in a directory shared by all
(prometheus-client's multiprocess mode, enabled by `PROMETHEUS_MULTIPROC_DIR` before the
client is imported), and whichever worker answers a scrape adds up everyone's files.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.requests import Request
from starlette.responses import Response

from ..version import package_version
from .metrics import BUILD_INFO

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def metrics_endpoint(multiprocess_dir: Path | None) -> Callable[[Request], Awaitable[Response]]:
    """The route's handler: this process's registry, or every worker's files in
    `multiprocess_dir`."""
    BUILD_INFO.labels(package_version()).set(1)

    async def metrics(request: Request) -> Response:
        if multiprocess_dir is None:
            registry = REGISTRY
        else:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]
        # Reading the workers' files is blocking I/O.
        text = await asyncio.to_thread(generate_latest, registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return metrics


def prepare_multiprocess_dir(data_dir: Path) -> Path:
    """A fresh, empty directory for this `serve`'s workers, `$DATA_DIR/metrics/<pid>`.

    One per serving process, since several may share a data dir; those of processes that are
    gone are removed, so counts never carry over from an earlier run.
    """
    root = data_dir / "metrics"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.iterdir():
        if not (stale.name.isdigit() and _alive(int(stale.name))):
            shutil.rmtree(stale, ignore_errors=True)
    directory = root / str(os.getpid())
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    return directory


def clear_multiprocess_dir(directory: Path) -> None:
    """Remove the values an earlier run left in an operator's directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for values in directory.glob("*.db"):
        values.unlink(missing_ok=True)


def remove_multiprocess_dir(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def forget_worker(directory: Path, pid: int) -> None:
    """A worker exits: its live gauges (connections in use) stop counting."""
    with contextlib.suppress(OSError):
        mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
