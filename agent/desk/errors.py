"""Errors the desk raises to the API and the counter page (each with the clerk's hint)."""

from __future__ import annotations

from agent.errors import IdAgentError


class AccessNeededError(IdAgentError):
    code = "need_access"
    exit_code = 5
    http_status = 409
    hint = "Scan the QR code on the card, or type the 6-digit card access number (the last 6 digits of the ID number)."


class InternalError(IdAgentError):
    code = "internal"
    exit_code = 1
    hint = "Lay the card down again; if it repeats, send the agent's log to IT."


class CloneRefusedError(IdAgentError):
    code = "probable_clone"
    exit_code = 2
    http_status = 409
    hint = "Ask for another identity document; report the card to the issuing police office."


class AlteredDataRefusedError(IdAgentError):
    code = "altered_data"
    exit_code = 2
    http_status = 409
    hint = "Ask for another identity document; the data on this chip do not match their signature."


class NotConfiguredError(IdAgentError):
    code = "not_configured"
    exit_code = 3
    http_status = 409


class NoIdentityError(IdAgentError):
    code = "no_identity"
    exit_code = 4
    http_status = 404
    hint = "Lay the card on the reader (or scan its QR code) first."

