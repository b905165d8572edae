"""Settings read once from the environment; an invalid value stops the start with one line."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from .storage.s3 import S3Config


class ConfigError(Exception):
    """An environment variable has a value the server cannot use."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None
    storage_url: str
    s3: S3Config | None
    jwt_secret: str
    jwt_audience: str | None
    host: str
    port: int
    demo_conversations: int
    cors_origins: tuple[str, ...] = ()
    max_request_bytes: int = 1024 * 1024
    graphql_max_depth: int = 12
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 5000
    graphql_introspection: bool = True
    # The owner's URL, for migrations and maintenance (sweeper, clean-up, check); None: the same
    # as `database_url` (or, embedded, the server's superuser).
    database_owner_url: str | None = None
    database_pool_size: int = 10
    database_pool_timeout: float = 10.0
    database_statement_timeout: float = 30.0
    writer_connections: int = 4
    lock_timeout: float = 30.0
    shutdown_timeout: float = 30.0
    health_min_free_bytes: int = 256 * 1024 * 1024
    cleanup_interval: float = 600.0
    playground_assets_dir: Path | None = None

    @property
    def storage_path(self) -> Path:
        """The directory of a `file://` storage URL."""
        return Path(unquote(urlparse(self.storage_url).path))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("DATA_DIR") or ".data").expanduser().resolve()
        storage_url = _storage_url(env.get("STORAGE_URL"), data_dir)
        return cls(
            data_dir=data_dir,
            database_url=_database_url(env.get("DATABASE_URL"), "DATABASE_URL"),
            storage_url=storage_url,
            s3=_s3(storage_url, env),
            jwt_secret=_jwt_secret(env.get("JWT_SECRET"), data_dir),
            jwt_audience=env.get("JWT_AUDIENCE") or None,
            host=env.get("HOST") or "127.0.0.1",
            port=_int("PORT", env.get("PORT"), default=8000, low=1, high=65535),
            demo_conversations=_int(
                "DEMO_CONVERSATIONS",
                env.get("DEMO_CONVERSATIONS"),
                default=200,
                low=0,
                high=100_000,
            ),
            cors_origins=_origins(env.get("CORS_ORIGINS")),
            max_request_bytes=_int(
                "MAX_REQUEST_BYTES",
                env.get("MAX_REQUEST_BYTES"),
                default=cls.max_request_bytes,
                low=1024,
                high=1 << 30,
            ),
            graphql_max_depth=_int(
                "GRAPHQL_MAX_DEPTH",
                env.get("GRAPHQL_MAX_DEPTH"),
                default=cls.graphql_max_depth,
                low=2,
                high=100,
            ),
            graphql_max_aliases=_int(
                "GRAPHQL_MAX_ALIASES",
                env.get("GRAPHQL_MAX_ALIASES"),
                default=cls.graphql_max_aliases,
                low=0,
                high=10_000,
            ),
            graphql_max_tokens=_int(
                "GRAPHQL_MAX_TOKENS",
                env.get("GRAPHQL_MAX_TOKENS"),
                default=cls.graphql_max_tokens,
                low=100,
                high=1_000_000,
            ),
            graphql_introspection=_bool(
                "GRAPHQL_INTROSPECTION",
                env.get("GRAPHQL_INTROSPECTION"),
                default=cls.graphql_introspection,
            ),
            database_owner_url=_database_url(env.get("DATABASE_OWNER_URL"), "DATABASE_OWNER_URL"),
            database_pool_size=_int(
                "DATABASE_POOL_SIZE",
                env.get("DATABASE_POOL_SIZE"),
                default=cls.database_pool_size,
                low=2,
                high=1000,
            ),
            database_pool_timeout=_seconds(
                "DATABASE_POOL_TIMEOUT", env.get("DATABASE_POOL_TIMEOUT"), cls.database_pool_timeout
            ),
            database_statement_timeout=_seconds(
                "DATABASE_STATEMENT_TIMEOUT",
                env.get("DATABASE_STATEMENT_TIMEOUT"),
                cls.database_statement_timeout,
            ),
            writer_connections=_int(
                "WRITER_CONNECTIONS",
                env.get("WRITER_CONNECTIONS"),
                default=cls.writer_connections,
                low=1,
                high=100,
            ),
            lock_timeout=_seconds("LOCK_TIMEOUT", env.get("LOCK_TIMEOUT"), cls.lock_timeout),
            shutdown_timeout=_seconds(
                "SHUTDOWN_TIMEOUT", env.get("SHUTDOWN_TIMEOUT"), cls.shutdown_timeout
            ),
            health_min_free_bytes=_int(
                "HEALTH_MIN_FREE_BYTES",
                env.get("HEALTH_MIN_FREE_BYTES"),
                default=cls.health_min_free_bytes,
                low=0,
                high=1 << 50,
            ),
            cleanup_interval=_seconds(
                "CLEANUP_INTERVAL", env.get("CLEANUP_INTERVAL"), cls.cleanup_interval
            ),
            playground_assets_dir=Path(env["PLAYGROUND_ASSETS_DIR"])
            if env.get("PLAYGROUND_ASSETS_DIR")
            else None,
        )


def _int(name: str, raw: str | None, *, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _seconds(name: str, raw: str | None, default: float) -> float:
    """A positive duration in seconds (fractions allowed), at most a day."""
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= 86_400:
        raise ConfigError(f"{name} must be more than 0 and at most 86400 seconds, got {raw}")
    return value


def _bool(name: str, raw: str | None, *, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _origins(raw: str | None) -> tuple[str, ...]:
    """Comma-separated origins such as `https://app.example.com`; `*` allows any."""
    if not raw:
        return ()
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        parsed = urlparse(origin)
        if origin != "*" and (parsed.scheme not in ("http", "https") or not parsed.netloc):
            raise ConfigError(f"CORS_ORIGINS: {origin!r} is not an origin like https://host[:port]")
    return origins


def _database_url(raw: str | None, name: str) -> str | None:
    if not raw:
        return None
    if urlparse(raw).scheme not in ("postgres", "postgresql"):
        raise ConfigError(
            f"{name} must be a postgresql:// URL, got scheme {urlparse(raw).scheme!r}"
        )
    return raw


def _storage_url(raw: str | None, data_dir: Path) -> str:
    if not raw:
        return (data_dir / "storage").as_uri()
    parsed = urlparse(raw)
    if parsed.scheme == "s3":
        if raw.rstrip("/") != "s3:":
            raise ConfigError(
                "STORAGE_URL must be plain s3:// (buckets come from S3_CONVERSATION_BUCKET "
                f"and S3_TRAINING_BUCKET), got {raw!r}"
            )
        return "s3://"
    if parsed.scheme != "file":
        raise ConfigError(f"STORAGE_URL must be a file:// or s3:// URL, got {raw!r}")
    if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
        raise ConfigError(f"STORAGE_URL must be an absolute file:///path URL, got {raw!r}")
    return raw


def _s3(storage_url: str, env: Mapping[str, str]) -> S3Config | None:
    if storage_url != "s3://":
        return None
    try:
        return S3Config.from_env(env)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _jwt_secret(raw: str | None, data_dir: Path) -> str:
    """The configured secret, else one generated on first start and kept in the data dir."""
    if raw:
        if len(raw) < 32:
            raise ConfigError("JWT_SECRET must be at least 32 characters long")
        return raw
    path = data_dir / "jwt-secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its secret
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret
