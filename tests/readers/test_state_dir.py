"""Issue 14 item 4: the pcscd helper's lock, lease and log and the vpcd slot locks live in
a private 0700 folder per user, opened without following links; several processes still
share them (one pcscd for several test runs and the demo)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import agent.sim.pcscd as mod
from agent.sim import statedir
from agent.sim.vpcd import VpcdClient

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "idagent-state"
    monkeypatch.setattr(mod, "LOCK_FILE", folder / "pcscd.lock")
    monkeypatch.setattr(mod, "LEASE_FILE", folder / "pcscd.json")
    monkeypatch.setattr(mod, "LOG_FILE", folder / "pcscd.log")
    return folder


def test_no_fixed_names_in_the_shared_tmp() -> None:
    shared = Path(tempfile.gettempdir())
    for path in (mod.LOCK_FILE, mod.LEASE_FILE, mod.LOG_FILE, VpcdClient("x", port=35963)._lock_path()):
        assert Path(path).parent == shared / f"idagent-{os.getuid()}"
        assert Path(path).parent != shared


def test_folder_is_created_private_and_files_owner_only(private: Path) -> None:
    with mod._locked() as state:
        state["users"] = []
    assert private.stat().st_mode & 0o777 == 0o700
    for name in ("pcscd.lock", "pcscd.json"):
        assert (private / name).stat().st_mode & 0o777 == 0o600


def test_a_wider_folder_of_ours_is_tightened(private: Path) -> None:
    private.mkdir(mode=0o777)
    private.chmod(0o777)
    with mod._locked():
        pass
    assert private.stat().st_mode & 0o777 == 0o700


def test_a_planted_link_to_the_lock_file_is_refused(private: Path, tmp_path: Path) -> None:
    private.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (private / "pcscd.lock").symlink_to(victim)
    with pytest.raises(statedir.StateDirError, match="symbolic link"):
        with mod._locked():
            pass
    assert victim.read_text() == "untouched"


def test_a_planted_link_as_the_folder_is_refused(private: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    private.symlink_to(elsewhere)
    with pytest.raises(statedir.StateDirError, match="symbolic link or not a folder"):
        with mod._locked():
            pass
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give the folder to another user")
def test_another_users_folder_is_refused(private: Path) -> None:
    private.mkdir(mode=0o700)
    os.chown(private, 65534, 65534)
    with pytest.raises(statedir.StateDirError, match="another user"):
        with mod._locked():
            pass


def test_the_vpcd_slot_lock_refuses_a_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "state"
    monkeypatch.setattr("agent.sim.vpcd.state_dir", lambda: folder)
    client = VpcdClient("x", port=35999)
    folder.mkdir(mode=0o700)
    (folder / "vpcd-35999.lock").symlink_to(tmp_path / "target")
    with pytest.raises(statedir.StateDirError):
        client._acquire_slot()
    assert not (tmp_path / "target").exists()


def test_the_lease_lock_is_shared_between_processes(private: Path) -> None:
    """A second process waits for the first one's lock: the lease stays one per user."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; import agent.sim.pcscd as m; "
         f"d = Path({str(private)!r}); m.LOCK_FILE, m.LEASE_FILE = d / 'pcscd.lock', d / 'pcscd.json'\n"
         "with m._locked() as s:\n    s['users'] = ['1:held']\n    print('locked', flush=True)\n    time.sleep(1.5)\n"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with mod._locked() as state:
            # the holder writes its lease when it lets the lock go: seeing it here means
            # we got the lock only after that (judged by order, not by how long we waited)
            assert state["users"] == ["1:held"]
    finally:
        holder.wait(10)
    assert holder.returncode == 0
