"""Reader-layer errors beyond the shared hierarchy in agent.errors."""

from __future__ import annotations

from agent.errors import CardRemovedError, ProtocolError


class ReaderGoneError(CardRemovedError):
    """The reader itself disappeared (unplugged, driver gone) while we used it.

    A subclass of ``CardRemovedError``: whoever waits for the next card handles it the
    same way, but the message and hint name the reader."""

    code = "reader_gone"
    exit_code = 6
    hint = "The card reader was unplugged. Plug it back in, then lay the card on it again."


class ResponseTooShortError(ProtocolError):
    """A transport returned fewer than the 2 status-word bytes every response has."""

    code = "response_too_short"
    exit_code = 6
