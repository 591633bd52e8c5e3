"""The extended-length policy of a chip read.

Whether a read uses extended-length APDUs (one READ BINARY per file) is decided here
and nowhere else above the reader:

* ``[card] extended_length`` / ``read_chip(extended=…)``: "on", "off", or "auto" (the
  reader backend's answer, ``agent.readers.atr.resolve_extended_length``);
* a chip that refuses the extended length its reader announced may drop secure
  messaging over it: ``LengthPolicy`` switches extended length off for everything
  after (Chip and Active Authentication included), the read starts again once with
  short APDUs (``agent.icao.read``), and ``ExtendedLengthMemory`` keeps the chip's ATR
  so that its next reads go short from the start ("try once, remember").
"""

from __future__ import annotations

from agent.readers.apdu import Channel, Command, Response


class LengthPolicy:
    """The channel under secure messaging, with extended length switchable off.

    The connection says whether reader and chip announce extended length; when the
    chip then refuses it, every later command (Chip/Active Authentication included)
    must stay short, so the session is built over this switch."""

    def __init__(self, inner: Channel, allow_extended: bool = True) -> None:
        self.inner = inner
        self.allow_extended = allow_extended

    @property
    def extended_length(self) -> bool:
        return self.allow_extended and bool(self.inner.extended_length)

    def send(self, command: Command) -> Response:
        return self.inner.send(command)


class ExtendedLengthMemory:
    """ATRs of chips that refused the extended length their reader announced, so the
    next read of such a card goes short at once instead of losing a session to it
    ("try once, remember"). Bounded: an ATR identifies a chip model, not a person."""

    LIMIT = 64

    def __init__(self) -> None:
        self._refused: dict[bytes, None] = {}

    def refused(self, atr: bytes) -> bool:
        return bool(atr) and atr in self._refused

    def remember(self, atr: bytes) -> None:
        if not atr:
            return
        self._refused[atr] = None
        while len(self._refused) > self.LIMIT:
            self._refused.pop(next(iter(self._refused)))


#: process-wide: the daemon reads many cards through one reader
EXTENDED_MEMORY = ExtendedLengthMemory()


def _atr_of(channel: Channel) -> bytes:
    connection = getattr(channel, "connection", None)
    return bytes(getattr(connection, "atr", b"") or b"")


def atr_of(channel: Channel) -> bytes:
    """The ATR of the connection under ``channel`` (b"" when it has none): the key of
    ``ExtendedLengthMemory``."""
    connection = getattr(channel, "connection", None)
    return bytes(getattr(connection, "atr", b"") or b"")


def start_mode(extended: str, memory: ExtendedLengthMemory, atr: bytes) -> str:
    """The ``extended`` option a read starts with: "auto" goes "off" for a chip whose
    ATR refused extended length before."""
    if extended == "auto" and memory.refused(atr):
        return "off"
    return extended
