"""Where the S3 buckets are and how to reach them: a frozen, checked configuration.

Pure data: `config.py` builds it from the environment (and names the variable when a value is
wrong); `S3Storage.open` takes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlparse

from .base import BUCKETS, TRAINING_BUCKET, InvalidKey, validate_key

AddressingStyle = Literal["path", "virtual", "auto"]

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class InvalidS3Config(ValueError):
    """A field of `S3Config` has a value that cannot work; `field` says which."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class S3Config:
    """Where the buckets are and how to reach them.

    `access_key_id`/`secret_access_key` left as None use botocore's default chain
    (environment, shared config files, instance or container roles).
    """

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    # Logical bucket ("conversation-files", "training-files") -> real bucket name.
    buckets: Mapping[str, str] = field(default_factory=lambda: {b: b for b in BUCKETS})
    # Prepended to every key: "" or "something/" (several deployments may share buckets).
    key_prefix: str = ""
    # Create missing buckets in `S3Storage.open`; otherwise `check` reports them.
    create_buckets: bool = False
    # MinIO, moto, R2 and Supabase want path style; AWS accepts both.
    addressing_style: AddressingStyle = "path"
    # The endpoint presigned download URLs point at, when clients reach the store by another
    # address than the server does (e.g. http://minio:9000 inside, https://s3.example.com out).
    public_endpoint_url: str | None = None
    # Copy ranges inside the store with UploadPartCopy when it supports it.
    server_side_copy: bool = True
    # Store an extended file as a composite of immutable segments (s3_compose.py), so an add
    # uploads only what it adds; its downloads then go through the app's own route.
    composite_objects: bool = True
    # Attempts per request (botocore "standard" retries of throttling and transient errors).
    max_attempts: int = 3
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def __post_init__(self) -> None:
        for name in ("endpoint_url", "public_endpoint_url"):
            _check_endpoint(name, getattr(self, name))
        if not self.region or not re.match(r"^[A-Za-z0-9-]+$", self.region):
            raise InvalidS3Config("region", f"{self.region!r} is not a valid region")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            missing = "secret_access_key" if self.secret_access_key is None else "access_key_id"
            raise InvalidS3Config(missing, "must be set together with the other credential")
        buckets = dict(self.buckets)
        if set(buckets) != set(BUCKETS):
            raise InvalidS3Config("buckets", f"must map exactly {sorted(BUCKETS)}")
        for logical, real in buckets.items():
            if not isinstance(real, str) or not _BUCKET_NAME.match(real) or ".." in real:
                raise InvalidS3Config(logical, f"{real!r} is not a valid S3 bucket name")
        if len(set(buckets.values())) != len(buckets):
            raise InvalidS3Config(TRAINING_BUCKET, "must differ from the conversation bucket")
        object.__setattr__(self, "buckets", MappingProxyType(buckets))
        if self.key_prefix:
            if not self.key_prefix.endswith("/"):
                raise InvalidS3Config("key_prefix", f"must end with '/', got {self.key_prefix!r}")
            try:
                validate_key(self.key_prefix[:-1])
            except InvalidKey:
                raise InvalidS3Config("key_prefix", f"{self.key_prefix!r} is not allowed") from None
        if self.addressing_style not in ("path", "virtual", "auto"):
            raise InvalidS3Config(
                "addressing_style", f"must be path, virtual or auto, not {self.addressing_style!r}"
            )
        if not 1 <= self.max_attempts <= 20:
            raise InvalidS3Config("max_attempts", "must be between 1 and 20")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise InvalidS3Config("timeouts", "must be positive")

    def __hash__(self) -> int:  # `buckets` is a mapping: hash its items
        return hash(
            tuple(
                tuple(sorted(value.items())) if name == "buckets" else value
                for name, value in vars(self).items()
            )
        )


def _check_endpoint(name: str, url: str | None) -> None:
    if url is None:
        return
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidS3Config(name, "must be an http:// or https:// URL")
    if parsed.username is not None or parsed.password is not None:
        raise InvalidS3Config(name, "must not contain credentials")
    if parsed.query or parsed.fragment or parsed.path not in ("", "/"):
        raise InvalidS3Config(name, "must be scheme://host[:port] only")
