"""Secret files (the outbox key, the intake HMAC key): created owner-only, and refused
when anyone else could read them."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

from agent.errors import ConfigError
from agent.logs import register_secret

logger = logging.getLogger(__name__)


class KeyFileError(ConfigError):
    code = "key_file"
    exit_code = 3
    hint = "Make the key file readable by the agent's user only: chmod 600 <file>."


def check_private(path: Path) -> None:
    """Refuse a secret file that group or others may read or write."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(f"{path} has permissions {mode:04o}; a key file must be 0600 (owner only)",
                           hint=f"Run: chmod 600 {path}")


def read_secret(path: str | os.PathLike[str], *, what: str, min_bytes: int = 16) -> bytes:
    """The file's bytes (surrounding whitespace removed), after the permission check."""
    p = Path(path)
    try:
        check_private(p)
        data = p.read_bytes().strip()
    except FileNotFoundError:
        raise KeyFileError(f"{what}: {p} does not exist",
                           hint=f"Create it with a random secret (at least {min_bytes} bytes), chmod 600.") from None
    except PermissionError:
        raise KeyFileError(f"{what}: {p} cannot be read by this user") from None
    if len(data) < min_bytes:
        raise KeyFileError(f"{what}: {p} holds {len(data)} bytes; at least {min_bytes} are needed")
    register_secret(data)
    return data


def load_or_create_key(path: str | os.PathLike[str], *, size: int = 32,
                       rng: Callable[[int], bytes] = os.urandom) -> bytes:
    """A raw symmetric key stored as hex. Created (0600, parent 0700) when absent."""
    p = Path(path)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = rng(size)
        # O_EXCL: two processes starting at once must not both write a key
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(key.hex() + "\n")
                f.flush()
                os.fsync(f.fileno())
            logger.info("created a new key file %s (0600)", p)
            register_secret(key)
            return key
    check_private(p)
    text = p.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"{p} does not hold a hex key",
                           hint="Delete it only if the outbox is empty (its items would become unreadable).") from None
    if len(key) != size:
        raise KeyFileError(f"{p} holds a {len(key)}-byte key; {size} bytes expected")
    register_secret(key)
    return key
