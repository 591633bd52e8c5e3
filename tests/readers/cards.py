"""Synthetic virtual cards for the reader tests (no personal data: byte patterns)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from agent.readers.base import CardConnection
from agent.sim.card import Chaining, DedicatedFile, ElementaryFile, FileSystemCard, VirtualCard

#: an application identifier of our own test DF (not a registered AID)
TEST_AID = bytes.fromhex("F0494441474E5401")
SMALL = bytes(range(256)) * 2 + b"tail"  # 516 bytes
BIG = bytes((i * 7) & 0xFF for i in range(40000))  # > 32767: needs READ BINARY B1


def make_card(*, extended_length: bool = False, chaining: Chaining = Chaining.NONE, chunk: int = 256) -> FileSystemCard:
    mf = DedicatedFile()
    mf.add(ElementaryFile(0x011C, b"\x31\x00", sfi=0x1C))
    app = DedicatedFile(0x0200, TEST_AID)
    mf.add(app)
    app.add(ElementaryFile(0x0101, SMALL, sfi=0x01))
    app.add(ElementaryFile(0x0102, BIG, sfi=0x02))
    return FileSystemCard(mf, extended_length=extended_length, chaining=chaining, chunk=chunk)


class BlockingCard(VirtualCard):
    """Answers 9000, but holds each command until the test releases it: lets a test
    pull the card (or the reader) while a command is in flight."""

    extended_length = False

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.block = False

    def power_on(self) -> bytes:
        return bytes.fromhex("3B8001" "81")  # T=1, no historical bytes (TCK = 80 ^ 01)

    def power_off(self) -> None:
        pass

    def process(self, apdu: bytes) -> bytes:
        if self.block:
            self.entered.set()
            self.release.wait(10)
        return b"\x90\x00"


def pull_mid_command(conn: CardConnection, card: BlockingCard, pull: Callable[[], None],
                     timeout: float = 5.0) -> list[BaseException]:
    """One READ BINARY that ``card`` holds; ``pull()`` (the card or the reader goes)
    while it is held, then the card answers. Returns what the transmit raised: the
    same scenario for every backend."""
    card.block = True
    errors: list[BaseException] = []

    def send() -> None:
        try:
            conn.transmit(bytes.fromhex("00B0000001"))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    worker = threading.Thread(target=send)
    worker.start()
    assert card.entered.wait(timeout)
    pull()
    card.release.set()
    worker.join(1.5 * timeout)
    assert not worker.is_alive()
    return errors


class ShortAnswerCard(VirtualCard):
    """A broken card model answering a single byte."""

    def power_on(self) -> bytes:
        return bytes.fromhex("3B8001" "81")

    def power_off(self) -> None:
        pass

    def process(self, apdu: bytes) -> bytes:
        return b"\x90"
