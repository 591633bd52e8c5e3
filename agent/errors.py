"""The error hierarchy shared by every layer.

Every error carries a one-line ``hint``: what the person at the desk (or the IT person
reading the log) should do about it. Messages never contain personal data.

Errors are routed by class: each class states once its CLI exit code (``exit_code``)
and the local API's HTTP status (``http_status``); callers catch the classes they can
act on and never compare codes or messages.
"""

from __future__ import annotations


class IdAgentError(Exception):
    """Base of every error the agent raises on purpose."""

    #: stable machine code, used in JSON output and API error bodies
    code = "error"
    #: the CLI's exit code for this error (documented in ``idagent --help``)
    exit_code = 1
    #: the local API's HTTP status for this error (``agent.api.server``)
    http_status = 500
    #: default advice; instances may override it
    hint = "See the agent's log for details."

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class ConfigError(IdAgentError):
    code = "config"
    exit_code = 3
    hint = "Fix the named key in the config file, or the environment variable that overrides it."


class ReaderError(IdAgentError):
    """Anything that went wrong between us and the card reader."""

    code = "reader"
    exit_code = 4
    hint = "Check that the reader is plugged in and that pcscd is running (idagent doctor)."


class NoReaderError(ReaderError):
    code = "no_reader"
    http_status = 404
    hint = "Plug in a card reader, or name the right one with --reader (idagent readers lists them)."


class PcscUnavailableError(ReaderError):
    code = "pcscd_down"
    hint = "Start the PC/SC daemon: sudo systemctl start pcscd (idagent doctor checks it)."


class CardRemovedError(ReaderError):
    code = "card_removed"
    exit_code = 6
    hint = "The card left the reader. Lay it flat on the reader and keep it still until the read ends."


class NoCardError(ReaderError):
    code = "no_card"
    http_status = 409
    hint = "Lay the card flat on the reader."


class ProtocolError(IdAgentError):
    """The card (or a fixture) answered something the protocol does not allow."""

    code = "protocol"
    exit_code = 6
    hint = "Take the card off the reader and lay it down again; if this repeats, the card may be damaged."


class ParseError(IdAgentError):
    """Malformed bytes from outside. Names the file (or source) and the offset."""

    code = "parse"
    exit_code = 6
    http_status = 400
    hint = "The data on the card or in the file is malformed; it cannot be used as it is."

    def __init__(self, message: str, *, source: str = "", offset: int | None = None,
                 hint: str | None = None) -> None:
        where = source
        if offset is not None:
            where = f"{source} at offset {offset}" if source else f"offset {offset}"
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.source = source
        self.offset = offset


class UpstreamError(IdAgentError):
    """A service the agent forwards to (BHYT gateway, dossier intake, portal) failed."""

    code = "upstream"
    exit_code = 7
    http_status = 502
    hint = "Check the service named in the message; the card reading is not affected."
