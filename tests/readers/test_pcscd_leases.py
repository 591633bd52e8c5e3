"""ensure_pcscd's bookkeeping: start pcscd only when none answers, stop it only when
the last idagent user of a daemon we started leaves, never stop someone else's.
Process control is replaced by recorders here; the real start is exercised by the
session fixture (tests/conftest.py) on machines where pcscd is not already running."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.sim import pcscd as mod


class Daemon:
    def __init__(self, running: bool) -> None:
        self.running = running
        self.started: list[int] = []
        self.stopped: list[int] = []
        self.slow = False  # a pcscd process exists but does not answer yet
        self.readers = True  # whether it lists the vpcd readers

    def start(self, timeout: float) -> int:
        self.running = self.readers = True
        self.started.append(4242)
        return 4242

    def stop(self, pid: int, timeout: float = 5.0) -> None:
        self.running = False
        self.stopped.append(pid)


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Daemon:
    fake = Daemon(running=False)
    monkeypatch.setattr(mod, "LOCK_FILE", tmp_path / "lock")
    monkeypatch.setattr(mod, "LEASE_FILE", tmp_path / "lease.json")
    monkeypatch.setattr(mod, "pcscd_answers", lambda: fake.running)
    monkeypatch.setattr(mod, "_start", fake.start)
    monkeypatch.setattr(mod, "_stop", fake.stop)
    monkeypatch.setattr(mod, "_is_pcscd", lambda pid: fake.running and pid == 4242)
    monkeypatch.setattr(mod, "_vpcd_readers_loaded", lambda: fake.readers)
    monkeypatch.setattr(mod, "_running_pcscd", lambda: [4242] if fake.running or fake.slow else [])
    return fake


def test_overlapping_users_share_one_daemon(daemon: Daemon) -> None:
    first = mod.ensure_pcscd()
    handle = first.__enter__()
    assert handle.managed and daemon.started == [4242]
    with mod.ensure_pcscd() as second:
        assert second.pid == 4242 and daemon.started == [4242]  # joined, not started again
        first.__exit__(None, None, None)
        assert daemon.stopped == []  # the second user still needs it
    assert daemon.stopped == [4242]


def test_a_daemon_we_did_not_start_is_left_alone(daemon: Daemon) -> None:
    daemon.running = True
    with mod.ensure_pcscd() as handle:
        assert not handle.managed and handle.pid is None
    assert daemon.started == [] and daemon.stopped == []


def test_a_slow_daemon_is_waited_for_not_duplicated(daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    daemon.slow = True
    answers = iter([False, False, True])
    monkeypatch.setattr(mod, "pcscd_answers", lambda: next(answers))
    with mod.ensure_pcscd(timeout=5) as handle:
        assert not handle.managed
    assert daemon.started == [] and daemon.stopped == []


def test_a_daemon_that_never_answers_is_reported(daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.errors import PcscUnavailableError

    daemon.slow = True
    with pytest.raises(PcscUnavailableError, match="pid 4242.*does not answer"):
        with mod.ensure_pcscd(timeout=0.2):
            pass
    assert daemon.started == []


def test_our_daemon_without_vpcd_readers_is_restarted(daemon: Daemon) -> None:
    """vpcd fails to bind while its port is in TIME_WAIT: such a pcscd is useless."""
    mod.LEASE_FILE.write_text('{"pid": 4242, "users": []}')
    daemon.running, daemon.readers = True, False
    with mod.ensure_pcscd() as handle:
        assert handle.managed and daemon.stopped == [4242] and daemon.started == [4242]
    assert daemon.stopped == [4242, 4242]


def test_someone_elses_daemon_without_readers_is_not_touched(daemon: Daemon) -> None:
    daemon.running, daemon.readers = True, False
    with mod.ensure_pcscd() as handle:
        assert not handle.managed
    assert daemon.started == [] and daemon.stopped == []


def test_users_that_died_do_not_keep_the_daemon(daemon: Daemon) -> None:
    dead_pid = 2**22 + 12345  # above the default pid_max: never a live process
    mod.LEASE_FILE.write_text(f'{{"pid": 4242, "users": ["{dead_pid}:x"]}}')
    daemon.running = True
    with mod.ensure_pcscd() as handle:
        assert handle.managed and handle.pid == 4242
    assert daemon.stopped == [4242]


def test_prerequisites_are_installed_here() -> None:
    # pcscd and vsmartcard-vpcd are part of the set-up (scripts/setup.sh) and CI
    assert mod.missing_prerequisites() == []


def test_start_and_stop_a_child_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real _start/_stop on a stand-in process named "pcscd" (a symlink to Python,
    so /proc shows that name): started in its own session, stopped and reaped."""
    import os
    import sys

    fake = tmp_path / "pcscd"
    fake.symlink_to(sys.executable)
    monkeypatch.setattr(mod, "pcscd_binary", lambda: str(fake))
    monkeypatch.setattr(mod, "PCSCD_ARGS", ("-c", "import time; time.sleep(30)"))
    monkeypatch.setattr(mod, "LOG_FILE", tmp_path / "pcscd.log")
    monkeypatch.setattr(mod, "_remove_stale_socket", lambda: None)
    monkeypatch.setattr(mod, "_wait_vpcd_ports_free", lambda: None)
    monkeypatch.setattr(mod, "_vpcd_readers_loaded", lambda: True)
    monkeypatch.setattr(mod, "pcscd_answers", lambda: True)
    pid = mod._start(timeout=5)
    assert mod._is_pcscd(pid)
    assert os.getsid(pid) == pid  # its own session: a Ctrl-C in a test run does not reach it
    mod._stop(pid)
    assert not mod._alive(pid)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left


def test_vpcd_ports_come_from_reader_conf() -> None:
    # /etc/reader.conf.d/vpcd: DEVICENAME /dev/null:0x8C7B (domain.md: 35963, and 35964 for slot 01)
    assert mod.vpcd_ports() == [35963, 35964]


def test_busy_ports_are_seen_listening_and_in_time_wait() -> None:
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    assert mod._ports_busy([port])  # a listener (another namespace's vpcd, say)
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    server.close()
    accepted.close()  # the server side closes first: its port lingers in TIME_WAIT
    client.recv(1)
    client.close()
    assert mod._ports_busy([port])
