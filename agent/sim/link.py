"""The virtual chip on a wire, in process: the test double that tests and benches put
under an ``ApduChannel`` when they need no reader at all (ISO 7816 bytes in, bytes out).
It keeps the exchange for assertions (``log``) and the chip's own CPU time (benches)."""

from __future__ import annotations

import time

from agent.sim.card import VirtualCard


class Link:
    """A ``Transmitter`` over a virtual card."""

    def __init__(self, card: VirtualCard, *, extended_length: bool | None = None) -> None:
        self.card = card
        self.extended_length = card.extended_length if extended_length is None else extended_length
        #: (command APDU, response APDU), in order
        self.log: list[tuple[bytes, bytes]] = []
        #: CPU seconds spent inside the card's ``process``
        self.chip_seconds = 0.0

    @property
    def apdus(self) -> int:
        return len(self.log)

    def transmit(self, apdu: bytes) -> bytes:
        started = time.process_time()
        answer = self.card.process(apdu)
        self.chip_seconds += time.process_time() - started
        self.log.append((apdu, answer))
        return answer
