"""The long-lived resources one server process shares across requests."""

from __future__ import annotations

from dataclasses import dataclass, field

from .aggregation.service import DownloadTarget, TrainingFileService
from .config import Settings
from .db.database import Database
from .downloads import DOWNLOAD_TTL_SECONDS, DownloadLink, sign_download
from .storage.base import Storage
from .storage.s3 import S3Storage


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    storage: Storage
    training_files: TrainingFileService = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "training_files", TrainingFileService(self.db, self.storage))

    async def download_link(self, target: DownloadTarget, base_url: str) -> DownloadLink:
        """A link that expires: presigned by the store for S3, else signed and served here."""
        if isinstance(self.storage, S3Storage):
            return await self.storage.presigned_download(
                target.bucket,
                target.key,
                filename=target.filename,
                content_type=target.content_type,
                ttl_seconds=DOWNLOAD_TTL_SECONDS,
            )
        return sign_download(
            secret=self.settings.jwt_secret,
            base_url=base_url,
            bucket=target.bucket,
            key=target.key,
            filename=target.filename,
            content_type=target.content_type,
        )
