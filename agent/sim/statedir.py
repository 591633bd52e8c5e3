"""A private folder for the pcscd helper's lock, lease and log and the vpcd slot locks.

These used to be fixed names in the shared /tmp (``/tmp/idagent-pcscd.lock`` ...), written
as root: another local user could plant a symbolic link there and have root write through
it. Now they live in ``<tmp>/idagent-<uid>/``, created 0700; a folder by that name that is
a link, not a folder, or another user's is refused, and every file in it is opened with
``O_NOFOLLOW``. All processes of one user (several test runs, the demo) share the folder,
so they still share one pcscd through the lease.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from agent.errors import PcscUnavailableError


class StateDirError(PcscUnavailableError):
    code = "state_dir"
    hint = "Remove the named file or folder (someone else created it), then try again."


def state_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"idagent-{os.getuid()}"


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (0700) or check that the existing one is ours, a real folder and private."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise StateDirError(f"{path} is a symbolic link or not a folder; refusing to use it")
    if info.st_uid != os.getuid():
        raise StateDirError(f"{path} belongs to another user (uid {info.st_uid}); refusing to use it")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)


def open_private(path: Path, flags: int) -> int:
    """``os.open`` of a file in a private folder: never through a symbolic link, created 0600."""
    ensure_private_dir(path.parent)
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateDirError(f"{path} is a symbolic link; refusing to open it") from None
        raise
