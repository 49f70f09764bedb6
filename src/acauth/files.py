"""The files acauth keeps (data dir, SQLite database, generated secret): private to their owner.

Modes are set explicitly after creation, so the umask of whoever starts the
server never loosens them. A directory acauth did not create is left as the
operator made it; a file acauth owns (its database, its generated secret) is
tightened when found looser.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from acauth.errors import ConfigError

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def reason(exc: OSError) -> str:
    """``permission denied``, ``read-only file system``…: the lower-case strerror."""
    return (exc.strerror or type(exc).__name__).lower()


def private_dir(path: Path, what: str = "data dir") -> None:
    """Create ``path`` and its missing parents with mode 0700, unless it exists.

    An existing one that other users may write to (without the sticky bit) is
    refused: whoever can replace the secret in it can forge tokens.
    """
    try:
        if path.is_dir():
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o022 and not mode & stat.S_ISVTX:
                raise ConfigError(
                    f"{what} {path} is writable by other users (mode {mode:04o}): chmod go-w {path}"
                )
            return
        missing = [p for p in (path, *path.parents) if not p.exists()]
        for directory in reversed(missing):
            directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)
            directory.chmod(PRIVATE_DIR)
    except OSError as exc:
        raise ConfigError(f"cannot create {what} {path}: {reason(exc)}") from None


def check_readable_dir(path: Path, what: str = "data dir") -> None:
    """One line if ``path`` is a directory its files cannot be reached in."""
    if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
        raise ConfigError(f"cannot read {what} {path}: permission denied")


def create_private_file(path: Path, content: str = "") -> bool:
    """Create ``path`` with mode 0600 holding ``content``; False if it already existed."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return False
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {reason(exc)}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), PRIVATE_FILE)
        fh.write(content)
    return True


def tighten(path: Path) -> None:
    """Make a file acauth owns 0600 if it is readable or writable by others (best effort)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)
    except OSError:
        pass  # absent, or not ours: opening it will say what is wrong
