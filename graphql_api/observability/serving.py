"""What `training-files serve` sets up for logs and metrics, in itself and in each worker."""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..config import Settings
from .exposition import (
    ENVIRONMENT_VARIABLE,
    clear_multiprocess_dir,
    forget_worker,
    prepare_multiprocess_dir,
    remove_multiprocess_dir,
)
from .logs import LogFormat, configure_logging

# uvicorn's own logging setup and access lines are off: its loggers write through ours, and
# our access line (with the request id, the user and the operation) replaces its own.
UVICORN_OPTIONS: dict[str, Any] = {"log_config": None, "access_log": False}


def start_logging(settings: Settings) -> LogFormat:
    return configure_logging(settings.log_format)


@contextmanager
def metrics_for_workers(settings: Settings, workers: int) -> Iterator[None]:
    """While `workers` processes serve: with more than one, a fresh directory they all write
    their metrics to, named in the environment they inherit (prometheus-client reads it when
    it is first imported, in each worker)."""
    if workers == 1 and settings.metrics_dir is None:
        yield
        return
    if settings.metrics_dir is not None:  # the operator's own: emptied, kept
        clear_multiprocess_dir(settings.metrics_dir)
        yield
        return
    directory = prepare_multiprocess_dir(settings.data_dir)
    os.environ[ENVIRONMENT_VARIABLE] = str(directory)
    try:
        yield
    finally:
        remove_multiprocess_dir(directory)


def worker_started(settings: Settings) -> None:
    """In a worker process, before its app is built."""
    start_logging(settings)
    if settings.metrics_dir is not None:
        atexit.register(forget_worker, settings.metrics_dir, os.getpid())
