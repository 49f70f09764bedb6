"""Configuration: one :class:`Settings` object, built at the edge and passed down.

A ``Settings`` built in code is plain data: it never reads the environment, and
what it is given is what it holds. The environment (``ACAUTH_*``) is read only by
:meth:`Settings.from_env`, called at the edges (``acauth serve``, the admin
commands, the ASGI factory). A worker process receives its parent's settings
whole through :meth:`Settings.to_worker_env` and :meth:`Settings.from_worker_env`.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import orjson
import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from acauth.errors import ConfigError
from acauth.files import check_readable_dir, create_private_file, private_dir, reason, tighten

MIN_SECRET_BYTES = 32
ENV_PREFIX = "ACAUTH_"
WORKER_ENV = "ACAUTH_WORKER_SETTINGS"


class Settings(BaseSettings):
    """Everything a server, the admin commands and the worker processes are configured by.

    Each field is the environment variable ``ACAUTH_<NAME>`` (see README).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

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
    # The front door (README "Limits of the front door"): what the HTTP server itself holds to.
    max_header_block_bytes: int = Field(default=65_536, ge=8192)
    header_timeout_s: float = Field(default=5.0, gt=0, le=3600)
    keepalive_timeout_s: float = Field(default=5.0, gt=0, le=3600)
    max_connections: int = Field(default=1000, gt=0)
    backlog: int = Field(default=1024, ge=128)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    access_log: bool = False
    hash_workers: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1), gt=0)
    refresh_interval_s: float = Field(default=0.25, gt=0)

    # Abuse limits (README "Rules worth knowing"); a login rate of 0 turns that limit off.
    aksk_single_use: bool = False
    hash_queue: int = Field(default=32, gt=0)
    login_rate_per_s: float = Field(default=5.0, ge=0)
    login_burst: int = Field(default=10, gt=0)
    trusted_proxies: str = ""
    audit_retention_days: int = Field(default=90, gt=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            ipaddress.ip_network(item, strict=False)  # its ValueError says which, in one line
        return value

    @model_validator(mode="after")
    def _a_header_value_fits_in_the_block(self) -> Settings:
        # A value over max_header_bytes must reach the app, to be answered with 10004.
        if self.max_header_block_bytes <= self.max_header_bytes:
            raise ValueError(
                "ACAUTH_MAX_HEADER_BLOCK_BYTES must be larger than ACAUTH_MAX_HEADER_BYTES"
            )
        return self

    min_password_length: int = Field(default=8, ge=1)

    emulator: bool = False
    # Emulator only: its whole state loaded at start and saved on exit; a scenario applied at start.
    emulator_state: Path | None = None
    emulator_scenario: Path | None = None
    listener: Literal["all", "public", "admin"] = "all"
    """What this listener serves: ``all``; ``public`` (the AC API, health, metrics, docs);
    ``admin`` (the admin API and the console, with health)."""
    # The store may be the demo's (published credentials): set by ``acauth serve --demo``.
    demo: bool = False
    log_json: bool | None = None  # None: JSON unless stderr is a terminal

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Built in code: only what the code gives. The environment is from_env's job.
        return (init_settings,)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Settings from ``ACAUTH_*``; each override that is not None wins over its variable.

        An explicit ``data_dir`` without a ``database_url`` also wins over
        ``ACAUTH_DATABASE_URL``: the store is where the command line says.
        Raises :class:`~acauth.errors.ConfigError` with one line saying what is wrong.
        """
        explicit = {k: v for k, v in overrides.items() if v is not None}
        source = EnvSettingsSource(
            cls, env_prefix=ENV_PREFIX, case_sensitive=False, env_ignore_empty=True
        )
        values = dict(source())
        if "data_dir" in explicit and "database_url" not in explicit:
            values.pop("database_url", None)
        return cls.validated({**values, **explicit})

    @classmethod
    def validated(cls, values: Mapping[str, Any]) -> Settings:
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(_problem(e) for e in exc.errors())
            raise ConfigError(f"bad configuration: {problems}") from None

    def to_worker_env(self) -> dict[str, str]:
        """What a worker process needs to rebuild these exact settings: one variable.

        The secret travels with them when it was configured as a value (as it
        came, from the environment); a generated secret stays in its file.
        """
        data = self.model_dump(exclude_unset=False)
        data["secret"] = self.secret.get_secret_value() if self.secret is not None else None
        return {WORKER_ENV: orjson.dumps(data, default=str).decode()}

    @classmethod
    def from_worker_env(cls, environ: Mapping[str, str]) -> Settings | None:
        """The settings :meth:`to_worker_env` handed over, or None if there are none."""
        raw = environ.get(WORKER_ENV)
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ConfigError(f"{WORKER_ENV} is not JSON") from None
        return cls.validated(data)

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
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"cannot read secret file {self.secret_file}: {_why(exc)}"
                ) from None
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


def _problem(error: Any) -> str:
    """One validation error in a line: the variable and what is wrong with it."""
    if error["loc"]:
        return f"{ENV_PREFIX}{'.'.join(map(str, error['loc'])).upper()}: {error['msg']}"
    # A rule across fields says itself which variables it is about.
    return str(error.get("ctx", {}).get("error", error["msg"]))


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
    check_readable_dir(path.parent)
    try:
        value = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read secret {path}: {_why(exc)}") from None
    else:
        tighten(path)
        return value
    private_dir(path.parent)
    value = secrets.token_hex(MIN_SECRET_BYTES)
    if create_private_file(path, value):
        return value
    # Another process created it first; use theirs.
    return path.read_text(encoding="utf-8")


def _why(exc: OSError | UnicodeDecodeError) -> str:
    return reason(exc) if isinstance(exc, OSError) else "not UTF-8 text"
