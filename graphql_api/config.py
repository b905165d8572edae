"""Settings read once from the environment; an invalid value stops the start with one line
naming the variable. Every variable the server reads is read here, and only here."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import unquote, urlparse

from .storage.base import CONVERSATION_BUCKET, TRAINING_BUCKET
from .storage.s3_config import AddressingStyle, InvalidS3Config, S3Config

T = TypeVar("T")

# Where the data dir came from, so a command that finds nothing there can say which to change.
DataDirSource = Literal["command line", "DATA_DIR", "default"]
# Where the JWT secret came from; "none": a command that signs nothing was not allowed to make
# one, and holds a throwaway that no server accepts.
SecretSource = Literal["JWT_SECRET", "data dir", "none"]


class ConfigError(Exception):
    """An environment variable has a value the server cannot use."""


class Env:
    """Typed reads of environment variables, like Starlette's `Config(cast=...)`: empty counts
    as unset, and a value that does not cast raises `ConfigError` naming the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self._environ.get(name, "")
        return value if value.strip() else default

    def cast(self, name: str, cast: Callable[[str], T], default: T) -> T:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return cast(raw)
        except ValueError as error:
            raise ConfigError(f"{name} {error}, got {raw!r}") from None

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        return self.cast(name, _bounded(int, "an integer", low, high), default)

    def seconds(self, name: str, default: float) -> float:
        """A duration in seconds (fractions allowed), more than 0 and at most a day."""
        return self.cast(name, _seconds, default)

    def flag(self, name: str, default: bool) -> bool:
        return self.cast(name, _boolean, default)


def _bounded(cast: Callable[[str], int], kind: str, low: int, high: int) -> Callable[[str], int]:
    def read(raw: str) -> int:
        try:
            value = cast(raw)
        except ValueError:
            raise ValueError(f"must be {kind}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return read


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not 0 < value <= 86_400:  # also refuses nan
        raise ValueError("must be more than 0 and at most 86400 seconds")
    return value


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


_LOG_FORMATS: dict[str, Literal["json", "text"]] = {"json": "json", "text": "text"}


def _log_format(raw: str) -> Literal["json", "text"]:
    try:
        return _LOG_FORMATS[raw.lower()]
    except KeyError:
        raise ValueError("must be json or text") from None


def _path(raw: str | None) -> Path | None:
    return Path(raw).expanduser().resolve() if raw else None


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
    # Required `iss` claim; None: not checked.
    jwt_issuer: str | None = None
    # An http(s):// or file:// JWKS whose RS256 / ES256 keys verify tokens beside JWT_SECRET.
    jwt_jwks_url: str | None = None
    jwt_jwks_refresh_interval: float = 600.0
    jwt_jwks_timeout: float = 5.0
    cors_origins: tuple[str, ...] = ()
    max_request_bytes: int = 1024 * 1024
    # Each uploaded conversation file (importConversations, POST /api/conversations).
    max_import_file_bytes: int = 25 * 1024 * 1024
    graphql_max_depth: int = 12
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 5000
    graphql_introspection: bool = True
    # None: text when stderr is a terminal, JSON lines otherwise (observability/logs.py).
    log_format: Literal["json", "text"] | None = None
    # prometheus-client's multiprocess directory (set by `serve --workers N` for its workers).
    metrics_dir: Path | None = None
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
    response_cache_bytes: int = 64 * 1024 * 1024
    data_dir_source: DataDirSource = "DATA_DIR"
    jwt_secret_source: SecretSource = "JWT_SECRET"

    @property
    def storage_path(self) -> Path:
        """The directory of a `file://` storage URL."""
        return Path(unquote(urlparse(self.storage_url).path))

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        data_dir: Path | None = None,
        create_secret: bool = True,
    ) -> Settings:
        """`data_dir` (the command line's `--data-dir`) wins over `DATA_DIR`. Without
        `create_secret`, a missing secret is not generated: only the server may mint the one
        its tokens are checked against."""
        env = Env(os.environ if environ is None else environ)
        data_dir, data_dir_source = _data_dir(env, data_dir)
        storage_url = _storage_url(env.text("STORAGE_URL"), data_dir)
        assets = env.text("PLAYGROUND_ASSETS_DIR")
        jwt_secret, jwt_secret_source = _jwt_secret(env.text("JWT_SECRET"), data_dir, create_secret)
        return cls(
            data_dir=data_dir,
            data_dir_source=data_dir_source,
            database_url=_database_url(env, "DATABASE_URL"),
            database_owner_url=_database_url(env, "DATABASE_OWNER_URL"),
            storage_url=storage_url,
            s3=_s3(env) if storage_url == "s3://" else None,
            jwt_secret=jwt_secret,
            jwt_secret_source=jwt_secret_source,
            jwt_audience=env.text("JWT_AUDIENCE"),
            jwt_issuer=env.text("JWT_ISSUER"),
            jwt_jwks_url=_jwks_url(env.text("JWT_JWKS_URL")),
            jwt_jwks_refresh_interval=env.seconds(
                "JWT_JWKS_REFRESH_INTERVAL", cls.jwt_jwks_refresh_interval
            ),
            jwt_jwks_timeout=env.seconds("JWT_JWKS_TIMEOUT", cls.jwt_jwks_timeout),
            host=env.text("HOST", "127.0.0.1") or "127.0.0.1",
            port=env.integer("PORT", 8000, low=1, high=65535),
            demo_conversations=env.integer("DEMO_CONVERSATIONS", 200, low=0, high=100_000),
            cors_origins=_origins(env.text("CORS_ORIGINS")),
            max_request_bytes=env.integer(
                "MAX_REQUEST_BYTES", cls.max_request_bytes, low=1024, high=1 << 30
            ),
            max_import_file_bytes=env.integer(
                "MAX_IMPORT_FILE_BYTES", cls.max_import_file_bytes, low=1024, high=1 << 30
            ),
            graphql_max_depth=env.integer(
                "GRAPHQL_MAX_DEPTH", cls.graphql_max_depth, low=2, high=100
            ),
            graphql_max_aliases=env.integer(
                "GRAPHQL_MAX_ALIASES", cls.graphql_max_aliases, low=0, high=10_000
            ),
            graphql_max_tokens=env.integer(
                "GRAPHQL_MAX_TOKENS", cls.graphql_max_tokens, low=100, high=1_000_000
            ),
            graphql_introspection=env.flag("GRAPHQL_INTROSPECTION", cls.graphql_introspection),
            log_format=env.cast("LOG_FORMAT", _log_format, None),
            metrics_dir=_path(env.text("PROMETHEUS_MULTIPROC_DIR")),
            database_pool_size=env.integer(
                "DATABASE_POOL_SIZE", cls.database_pool_size, low=2, high=1000
            ),
            database_pool_timeout=env.seconds("DATABASE_POOL_TIMEOUT", cls.database_pool_timeout),
            database_statement_timeout=env.seconds(
                "DATABASE_STATEMENT_TIMEOUT", cls.database_statement_timeout
            ),
            writer_connections=env.integer(
                "WRITER_CONNECTIONS", cls.writer_connections, low=1, high=100
            ),
            lock_timeout=env.seconds("LOCK_TIMEOUT", cls.lock_timeout),
            shutdown_timeout=env.seconds("SHUTDOWN_TIMEOUT", cls.shutdown_timeout),
            health_min_free_bytes=env.integer(
                "HEALTH_MIN_FREE_BYTES", cls.health_min_free_bytes, low=0, high=1 << 50
            ),
            cleanup_interval=env.seconds("CLEANUP_INTERVAL", cls.cleanup_interval),
            playground_assets_dir=Path(assets) if assets else None,
            response_cache_bytes=env.integer(
                "RESPONSE_CACHE_BYTES", cls.response_cache_bytes, low=0, high=1 << 40
            ),
        )


def _data_dir(env: Env, given: Path | None) -> tuple[Path, DataDirSource]:
    source: DataDirSource = "command line" if given else "DATA_DIR"
    raw = given or env.text("DATA_DIR")
    if raw is None:
        raw, source = ".data", "default"
    return Path(raw).expanduser().resolve(), source


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


def _database_url(env: Env, name: str) -> str | None:
    raw = env.text(name)
    if raw is None:
        return None
    if urlparse(raw).scheme not in ("postgres", "postgresql"):
        raise ConfigError(
            f"{name} must be a postgresql:// URL, got scheme {urlparse(raw).scheme!r}"
        )
    return raw


def _jwks_url(raw: str | None) -> str | None:
    """An http(s):// URL of a JWKS, or file:///absolute/path of one (both may rotate keys)."""
    if raw is None:
        return None
    parsed = urlparse(raw)
    if parsed.scheme in ("http", "https") and parsed.netloc:
        return raw
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost") and parsed.path[:1] == "/":
        return raw
    raise ConfigError(
        f"JWT_JWKS_URL must be an https:// URL or a file:///absolute/path of a JWKS, got {raw!r}"
    )


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


# The variable each S3Config field comes from, so an invalid value names what to fix.
_S3_VARIABLES = {
    "endpoint_url": "S3_ENDPOINT_URL",
    "public_endpoint_url": "S3_PUBLIC_ENDPOINT_URL",
    "region": "AWS_REGION",
    "access_key_id": "AWS_ACCESS_KEY_ID",
    "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    CONVERSATION_BUCKET: "S3_CONVERSATION_BUCKET",
    TRAINING_BUCKET: "S3_TRAINING_BUCKET",
    "key_prefix": "S3_KEY_PREFIX",
    "addressing_style": "S3_ADDRESSING_STYLE",
}


def _s3(env: Env) -> S3Config:
    prefix = (env.text("S3_KEY_PREFIX") or "").strip("/")
    try:
        return S3Config(
            endpoint_url=env.text("S3_ENDPOINT_URL"),
            public_endpoint_url=env.text("S3_PUBLIC_ENDPOINT_URL"),
            region=env.text("AWS_REGION") or env.text("AWS_DEFAULT_REGION") or "us-east-1",
            access_key_id=env.text("AWS_ACCESS_KEY_ID"),
            secret_access_key=env.text("AWS_SECRET_ACCESS_KEY"),
            buckets={
                bucket: env.text(_S3_VARIABLES[bucket]) or bucket
                for bucket in (CONVERSATION_BUCKET, TRAINING_BUCKET)
            },
            key_prefix=f"{prefix}/" if prefix else "",
            create_buckets=env.flag("S3_CREATE_BUCKETS", False),
            addressing_style=env.cast("S3_ADDRESSING_STYLE", _addressing_style, "path"),
            server_side_copy=env.flag("S3_SERVER_SIDE_COPY", True),
            composite_objects=env.flag("S3_COMPOSITE_OBJECTS", True),
        )
    except InvalidS3Config as error:
        name = _S3_VARIABLES.get(error.field, error.field)
        raise ConfigError(f"{name} {error.reason}") from None


_ADDRESSING_STYLES: dict[str, AddressingStyle] = {
    "path": "path",
    "virtual": "virtual",
    "auto": "auto",
}


def _addressing_style(raw: str) -> AddressingStyle:
    try:
        return _ADDRESSING_STYLES[raw.lower()]
    except KeyError:
        raise ValueError("must be path, virtual or auto") from None


def _jwt_secret(raw: str | None, data_dir: Path, create: bool) -> tuple[str, SecretSource]:
    """The configured secret, else the one generated on the server's first start and kept in
    the data dir (generated now when `create`)."""
    if raw:
        if len(raw) < 32:
            raise ConfigError("JWT_SECRET must be at least 32 characters long")
        return raw, "JWT_SECRET"
    path = data_dir / "jwt-secret"
    try:
        return path.read_text().strip(), "data dir"
    except FileNotFoundError:
        pass
    if not create:
        # Never written: what a command signs with it is refused everywhere, so it can't pass
        # for the server's (the command line refuses before signing anything with it).
        return secrets.token_urlsafe(48), "none"
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its secret
        return path.read_text().strip(), "data dir"
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret, "data dir"
