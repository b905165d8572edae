"""The long-lived resources one server process shares across requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from .aggregation.service import DownloadTarget, TrainingFileService
from .config import Settings
from .conversations.uploads import UploadImporter
from .db.database import Database
from .db.writers import WriterPool
from .domain.limits import LINK_TTL_SECONDS
from .observability.storage import CountedStorage
from .progress.hub import ProgressHub
from .runtime import Pools, database_urls, open_pools, open_storage, prepare_database
from .storage.base import DownloadLink, Storage


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database  # the request path, under row-level security
    writers: WriterPool  # builds, each holding its file's lock
    maintenance: Database  # the owner: sweeper and orphan clean-up
    storage: Storage
    # The owner's writer connections for uploads; None (services a test builds by hand): the
    # maintenance pool's connections.
    importers: WriterPool | None = None
    training_files: TrainingFileService = field(init=False)
    uploads: UploadImporter = field(init=False)
    # Subscribers to builds in any process; it listens only while someone subscribes.
    progress: ProgressHub = field(init=False)

    def __post_init__(self) -> None:
        service = TrainingFileService(self.db, self.writers, self.maintenance, self.storage)
        object.__setattr__(self, "training_files", service)
        importers = self.importers or WriterPool(
            self.maintenance.pool, timeout_seconds=self.settings.lock_timeout
        )
        uploads = UploadImporter(
            importers,
            self.storage,
            max_file_bytes=self.settings.max_import_file_bytes,
            wait_seconds=self.settings.lock_timeout,
        )
        object.__setattr__(self, "uploads", uploads)
        object.__setattr__(self, "progress", ProgressHub(self.db.connect_alone))

    @classmethod
    def of(cls, settings: Settings, pools: Pools, storage: Storage) -> Services:
        return cls(settings, pools.db, pools.writers, pools.maintenance, storage, pools.importers)

    async def download_link(self, target: DownloadTarget, base_url: str) -> DownloadLink:
        """A link that expires when the product's links do; the storage decides where it points
        (presigned by the store, or to this app's download route under `base_url`)."""
        return await self.storage.download_link(
            target.bucket,
            target.key,
            filename=target.filename,
            content_type=target.content_type,
            ttl_seconds=LINK_TTL_SECONDS,
            base_url=base_url,
        )


@asynccontextmanager
async def running_services(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Services]:
    """Open everything a server process needs; close it all, within bounds, at the end."""
    urls = await database_urls(settings)
    if migrate:
        await prepare_database(settings, urls)
    pools = await open_pools(settings, urls)
    try:
        storage = await open_storage(settings)
        try:
            services = Services.of(settings, pools, CountedStorage(storage))
            try:
                yield services
            finally:
                await services.progress.close()
        finally:
            await storage.close()
    finally:
        await pools.close(settings.shutdown_timeout / 3)
