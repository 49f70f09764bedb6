"""The signing secret: from the environment, a file, or generated once with mode 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from acauth.config import Settings, normalise_database_url
from acauth.errors import ConfigError


def test_secret_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    keys = Settings(data_dir=tmp_path).signing_keys()
    path = tmp_path / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(keys) == 1 and len(keys[0]) >= 32
    assert Settings(data_dir=tmp_path).signing_keys() == keys


def test_secret_from_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACAUTH_SECRET", "e" * 40)
    assert Settings(data_dir=tmp_path).signing_keys() == [b"e" * 40]
    assert not (tmp_path / "secret").exists()


def test_several_secrets_first_signs(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, secret="a" * 32 + ", " + "b" * 32)
    assert s.signing_keys() == [b"a" * 32, b"b" * 32]


def test_secret_file(tmp_path: Path) -> None:
    f = tmp_path / "s"
    f.write_text("f" * 32 + "\n")
    assert Settings(data_dir=tmp_path, secret_file=f).signing_keys() == [b"f" * 32]


@pytest.mark.parametrize("secret", ["short", "a" * 31, " , "])
def test_weak_secret_is_refused(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ConfigError):
        Settings(data_dir=tmp_path, secret=secret).signing_keys()


def test_database_urls_get_async_drivers() -> None:
    assert normalise_database_url("postgresql://u@h:5432/d") == "postgresql+asyncpg://u@h:5432/d"
    assert normalise_database_url("sqlite:////x/y.db") == "sqlite:////x/y.db"
    assert normalise_database_url("sqlite+aiosqlite:////x/y.db") == "sqlite:////x/y.db"


def test_secret_repr_is_hidden(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, secret="z" * 40)
    assert "z" * 40 not in repr(s) and "z" * 40 not in str(s.model_dump())
