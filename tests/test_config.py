"""Settings: read from the environment at the edge only; the signing secret from the
environment, a file, or generated once with mode 0600."""

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
    assert Settings.from_env(data_dir=tmp_path).signing_keys() == [b"e" * 40]
    assert not (tmp_path / "secret").exists()


def test_settings_built_in_code_never_read_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACAUTH_DATABASE_URL", "postgresql://elsewhere/prod")
    monkeypatch.setenv("ACAUTH_STRICT_HTTP", "true")
    s = Settings(data_dir=tmp_path)
    assert s.database_url is None and s.strict_http is False
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'acauth.db'}"


def test_from_env_reads_the_environment_and_explicit_values_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACAUTH_STRICT_HTTP", "true")
    monkeypatch.setenv("ACAUTH_RENEW_GRACE_S", "5")
    monkeypatch.setenv("ACAUTH_DATABASE_URL", "postgresql://elsewhere/prod")
    s = Settings.from_env(renew_grace_s=7.5, strict_http=None)
    assert (s.strict_http, s.renew_grace_s, s.database_url) == (
        True,
        7.5,
        "postgresql://elsewhere/prod",
    )
    # An explicit data directory is where the store is, whatever the environment says.
    assert Settings.from_env(data_dir=tmp_path).database_url is None


def test_bad_environment_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACAUTH_TOKEN_LIFETIME_S", "soon")
    with pytest.raises(ConfigError) as err:
        Settings.from_env()
    assert "ACAUTH_TOKEN_LIFETIME_S" in err.value.msg and "\n" not in err.value.msg


def test_worker_settings_round_trip_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Settings(
        data_dir=tmp_path, secret="w" * 40, strict_http=True, renew_grace_s=1.5, log_json=False
    )
    env = s.to_worker_env()
    # The worker's own environment does not leak in: the parent's settings are whole.
    monkeypatch.setenv("ACAUTH_STRICT_HTTP", "false")
    back = Settings.from_worker_env(env)
    assert back is not None
    assert back.model_dump() == s.model_dump()
    assert back.signing_keys() == [b"w" * 40]
    assert Settings.from_worker_env({}) is None


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
