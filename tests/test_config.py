from __future__ import annotations

from pathlib import Path

import pytest

from graphql_api.config import ConfigError, Settings


def test_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({"DATA_DIR": str(tmp_path)})
    assert settings.data_dir == tmp_path
    assert settings.database_url is None
    assert settings.storage_url == (tmp_path / "storage").as_uri()
    assert settings.storage_path == tmp_path / "storage"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.demo_conversations == 200


def test_generated_jwt_secret_is_kept_in_the_data_dir(tmp_path: Path) -> None:
    first = Settings.from_env({"DATA_DIR": str(tmp_path)}).jwt_secret
    second = Settings.from_env({"DATA_DIR": str(tmp_path)}).jwt_secret
    assert first == second and len(first) >= 32
    assert (tmp_path / "jwt-secret").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("DATABASE_URL", "mysql://localhost/db"),
        ("STORAGE_URL", "ftp://example/x"),
        ("STORAGE_URL", "file://relative/path"),
        ("JWT_SECRET", "short"),
        ("DEMO_CONVERSATIONS", "-1"),
    ],
)
def test_invalid_values_name_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({"DATA_DIR": str(tmp_path), name: value})


def test_every_bound_and_timeout_has_the_documented_default(tmp_path: Path) -> None:
    settings = Settings.from_env({"DATA_DIR": str(tmp_path)})
    assert (
        settings.database_pool_size,
        settings.database_pool_timeout,
        settings.database_statement_timeout,
        settings.writer_connections,
        settings.lock_timeout,
        settings.shutdown_timeout,
        settings.health_min_free_bytes,
        settings.cleanup_interval,
    ) == (10, 10.0, 30.0, 4, 30.0, 30.0, 256 * 1024 * 1024, 600.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_OWNER_URL", "sqlite:///x"),
        ("DATABASE_POOL_SIZE", "1"),
        ("DATABASE_POOL_TIMEOUT", "0"),
        ("DATABASE_STATEMENT_TIMEOUT", "soon"),
        ("WRITER_CONNECTIONS", "0"),
        ("LOCK_TIMEOUT", "nan"),
        ("SHUTDOWN_TIMEOUT", "-3"),
        ("HEALTH_MIN_FREE_BYTES", "lots"),
        ("CLEANUP_INTERVAL", "100000"),
        ("GRAPHQL_INTROSPECTION", "maybe"),
    ],
)
def test_invalid_bounds_name_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name} ") as caught:
        Settings.from_env({"DATA_DIR": str(tmp_path), name: value})
    assert repr(value) in str(caught.value) or name.endswith("URL")


S3_ENV = {
    "STORAGE_URL": "s3://",
    "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    "S3_PUBLIC_ENDPOINT_URL": "https://files.example.com",
    "AWS_REGION": "eu-west-3",
    "AWS_ACCESS_KEY_ID": "id",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "S3_CONVERSATION_BUCKET": "my-conversations",
    "S3_TRAINING_BUCKET": "my-training",
    "S3_KEY_PREFIX": "/prod/lora/",
    "S3_CREATE_BUCKETS": "yes",
    "S3_ADDRESSING_STYLE": "virtual",
    "S3_SERVER_SIDE_COPY": "false",
}


def test_s3_settings_come_from_their_variables(tmp_path: Path) -> None:
    config = Settings.from_env({"DATA_DIR": str(tmp_path), **S3_ENV}).s3
    assert config is not None
    assert config.endpoint_url == "http://127.0.0.1:9000"
    assert config.public_endpoint_url == "https://files.example.com"
    assert config.region == "eu-west-3"
    assert dict(config.buckets) == {
        "conversation-files": "my-conversations",
        "training-files": "my-training",
    }
    assert config.key_prefix == "prod/lora/"
    assert (config.create_buckets, config.addressing_style, config.server_side_copy) == (
        True,
        "virtual",
        False,
    )
    assert "secret" not in repr(config)

    defaults = Settings.from_env({"DATA_DIR": str(tmp_path), "STORAGE_URL": "s3://"}).s3
    assert defaults is not None
    assert (defaults.endpoint_url, defaults.region, defaults.key_prefix) == (None, "us-east-1", "")
    assert dict(defaults.buckets) == {
        "conversation-files": "conversation-files",
        "training-files": "training-files",
    }
    assert (defaults.create_buckets, defaults.addressing_style) == (False, "path")
    assert Settings.from_env({"DATA_DIR": str(tmp_path)}).s3 is None


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("S3_ENDPOINT_URL", "ftp://host", "must be an http:// or https:// URL"),
        ("S3_ENDPOINT_URL", "http://user:pw@host", "must not contain credentials"),
        ("S3_PUBLIC_ENDPOINT_URL", "http://host/path", "must be scheme://host[:port] only"),
        ("AWS_REGION", "eu west", "is not a valid region"),
        ("S3_TRAINING_BUCKET", "Bad_Name", "is not a valid S3 bucket name"),
        ("S3_CONVERSATION_BUCKET", "x", "is not a valid S3 bucket name"),
        ("S3_TRAINING_BUCKET", "conversation-files", "must differ from the conversation bucket"),
        ("S3_KEY_PREFIX", "a/../b", "is not allowed"),
        ("S3_CREATE_BUCKETS", "maybe", "must be true or false"),
        ("S3_ADDRESSING_STYLE", "dns", "must be path, virtual or auto"),
    ],
)
def test_invalid_s3_values_name_their_variable(
    tmp_path: Path, variable: str, value: str, reason: str
) -> None:
    env = {"DATA_DIR": str(tmp_path), "STORAGE_URL": "s3://", variable: value}
    with pytest.raises(ConfigError, match=f"^{variable} ") as caught:
        Settings.from_env(env)
    assert reason in str(caught.value)


def test_one_credential_without_the_other_names_the_missing_one(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path), "STORAGE_URL": "s3://", "AWS_ACCESS_KEY_ID": "id"}
    with pytest.raises(ConfigError, match=r"^AWS_SECRET_ACCESS_KEY must be set together"):
        Settings.from_env(env)
