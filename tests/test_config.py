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
