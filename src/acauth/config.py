"""Configuration: one :class:`Settings` object, built at the edge and passed down.

The environment (``ACAUTH_*``) is read only by :meth:`Settings.from_env`, called
by the CLI and the ASGI factory.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from acauth.errors import ConfigError

MIN_SECRET_BYTES = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ACAUTH_", extra="ignore")

    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("acauth", appauthor=False))
    )
    database_url: str | None = None
    # One or more secrets separated by commas: the first signs, all verify.
    secret: SecretStr | None = None
    secret_file: Path | None = None

    token_lifetime_s: int = Field(default=86_400, gt=0)
    renew_window_s: int = Field(default=86_400, ge=0)
    renew_grace_s: float = Field(default=60.0, ge=0)
    revoke_on_reuse: bool = False
    timestamp_window_s: int = Field(default=300, gt=0)
    store_timeout_s: float = Field(default=2.0, gt=0)
    strict_http: bool = False

    lockout_threshold: int = Field(default=5, gt=0)
    lockout_base_s: float = Field(default=1.0, gt=0)
    lockout_max_s: float = Field(default=300.0, gt=0)
    max_header_bytes: int = Field(default=8192, gt=0)
    hash_workers: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1), gt=0)
    refresh_interval_s: float = Field(default=0.25, gt=0)

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, gt=0)
    emulator: bool = False
    log_json: bool | None = None  # None: JSON unless stderr is a terminal

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        values = {k: v for k, v in overrides.items() if v is not None}
        return cls(**values)  # type: ignore[arg-type]

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{self.data_dir / 'acauth.db'}"

    def signing_keys(self) -> list[bytes]:
        """The HS256 keys, first one signing. Generates ``data_dir/secret`` once if none is set."""
        if self.secret is not None:
            raw = self.secret.get_secret_value()
            source = "ACAUTH_SECRET"
        elif self.secret_file is not None:
            try:
                raw = self.secret_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"cannot read secret file {self.secret_file}: {exc.strerror}"
                ) from exc
            source = str(self.secret_file)
        else:
            raw = _load_or_create_secret(self.data_dir / "secret")
            source = str(self.data_dir / "secret")
        keys = [part.strip().encode("utf-8") for part in raw.replace("\n", ",").split(",")]
        keys = [k for k in keys if k]
        if not keys:
            raise ConfigError(f"no secret in {source}")
        for k in keys:
            if len(k) < MIN_SECRET_BYTES:
                raise ConfigError(f"secret from {source} is shorter than {MIN_SECRET_BYTES} bytes")
        return keys


def normalise_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite://`` URLs and pick the async driver."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite+aiosqlite://", "sqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def _load_or_create_secret(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(MIN_SECRET_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it first; use theirs.
        return path.read_text(encoding="utf-8")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)
    return value
