"""The card side of the vpcd socket protocol against a stand-in vpcd (a local TCP
server speaking the framing of domain.md: 2-byte big-endian length + payload; 1-byte
payloads are controls 0 off, 1 on, 2 reset, 4 get ATR)."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from agent.errors import ReaderError
from agent.sim.vpcd import Control, VpcdClient, reader_name

from .cards import make_card


class FakeVpcd:
    """Listens like vpcd does; the test drives the conversation."""

    def __init__(self, port: int = 0) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.server.settimeout(5)
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5)

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(len(payload).to_bytes(2, "big") + payload)

    def recv(self) -> bytes:
        assert self.conn is not None
        header = self._exact(2)
        return self._exact(int.from_bytes(header, "big"))

    def ask(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.recv()

    def _exact(self, n: int) -> bytes:
        assert self.conn is not None
        buf = b""
        while len(buf) < n:
            chunk = self.conn.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("card side closed")
            buf += chunk
        return buf

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


@pytest.fixture
def vpcd():  # type: ignore[no-untyped-def]
    fake = FakeVpcd()
    yield fake
    fake.close()


def test_controls_and_apdus(vpcd: FakeVpcd) -> None:
    card = make_card()
    with VpcdClient(card, "127.0.0.1", vpcd.port, lock=False):
        vpcd.accept()
        atr = vpcd.ask(bytes((Control.GET_ATR,)))
        assert atr == card.power_on()
        vpcd.send(bytes((Control.POWER_OFF,)))
        vpcd.send(bytes((Control.POWER_ON,)))
        assert vpcd.ask(bytes.fromhex("00A4000C")) == b"\x90\x00"
        assert vpcd.ask(bytes.fromhex("00A4020C02011C")) == b"\x90\x00"
        assert vpcd.ask(bytes.fromhex("00B0000002")) == b"\x31\x00\x90\x00"
        vpcd.send(bytes((Control.RESET,)))
        assert vpcd.ask(bytes.fromhex("00B0000002")) == b"\x69\x86"  # reset dropped the selection


def test_remove_disconnects_and_insert_reconnects(vpcd: FakeVpcd) -> None:
    client = VpcdClient(make_card(), "127.0.0.1", vpcd.port, lock=False).start()
    try:
        vpcd.accept()
        assert vpcd.ask(bytes((Control.GET_ATR,)))
        client.remove()
        with pytest.raises(ConnectionError):
            vpcd.recv()  # the card side closed: vpcd reports the card removed
        assert not client.connected.is_set()
        client.insert()
        vpcd.accept()
        assert vpcd.ask(bytes.fromhex("00A4000C")) == b"\x90\x00"
    finally:
        client.stop()


def test_reconnects_with_backoff_when_vpcd_is_not_there() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on port now
    client = VpcdClient(make_card(), "127.0.0.1", port, backoff_initial=0.02, backoff_max=0.1,
                        lock=False).start()
    try:
        time.sleep(0.2)  # a few refused attempts, spaced by the backoff
        assert not client.connected.is_set()
        late = FakeVpcd(port)
        try:
            late.accept()
            assert late.ask(bytes((Control.GET_ATR,))).startswith(b"\x3B")
        finally:
            late.close()
    finally:
        client.stop()


def test_card_model_crash_answers_6f00_and_keeps_serving(vpcd: FakeVpcd) -> None:
    card = make_card()
    calls = {"n": 0}
    original = card.process

    def flaky(apdu: bytes) -> bytes:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("bug in a card model")
        return original(apdu)

    card.process = flaky  # type: ignore[method-assign]
    with VpcdClient(card, "127.0.0.1", vpcd.port, lock=False):
        vpcd.accept()
        assert vpcd.ask(bytes.fromhex("00A4000C")) == b"\x6F\x00"
        assert vpcd.ask(bytes.fromhex("00A4000C")) == b"\x90\x00"


def test_one_virtual_card_per_slot_on_this_machine(vpcd: FakeVpcd) -> None:
    first = VpcdClient(make_card(), "127.0.0.1", vpcd.port).start()
    try:
        second = VpcdClient(make_card(), "127.0.0.1", vpcd.port, lock_timeout=0.2)
        with pytest.raises(ReaderError, match="in use by another virtual card"):
            second.start()
    finally:
        first.stop()
    again = VpcdClient(make_card(), "127.0.0.1", vpcd.port, lock_timeout=1).start()
    again.stop()
    os.remove(again._lock_path())  # a random port: do not leave its lock file behind


def test_stop_is_prompt_while_blocked_in_recv(vpcd: FakeVpcd) -> None:
    client = VpcdClient(make_card(), "127.0.0.1", vpcd.port, lock=False).start()
    vpcd.accept()
    assert client.wait_connected(5)
    # the fake vpcd never sends: without stop() shutting the socket down, the serving
    # thread would stay blocked in recv for good (judged by that, not by a time: the
    # join's 30 s only bounds the wait for a thread that is woken)
    client.stop(timeout=30)
    assert client._thread is not None and not client._thread.is_alive()


def test_reader_names_follow_the_port() -> None:
    assert reader_name(35963) == "Virtual PCD 00 00"
    assert reader_name(35964) == "Virtual PCD 00 01"


def test_run_in_the_calling_thread_until_stop(vpcd: FakeVpcd) -> None:
    client = VpcdClient(make_card(), "127.0.0.1", vpcd.port, lock=False)
    runner = threading.Thread(target=client.run)
    runner.start()
    vpcd.accept()
    assert vpcd.ask(bytes.fromhex("00A4000C")) == b"\x90\x00"
    client.stop()
    runner.join(5)
    assert not runner.is_alive()
