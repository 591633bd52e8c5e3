"""The OpenAPI 3.0 document of the local API, served at ``GET /openapi.json``."""

from __future__ import annotations

from typing import Any

from agent import __version__
from agent.icao.verify import VerificationStatus

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Malformed request (the reason is in error.message)",
            401: "Missing or wrong token", 403: "Origin or Host not allowed",
            404: "Nothing to show (no identity in memory, no such reader)",
            409: "Not possible now (not configured, or the card needs an access key)",
            413: "Body too large", 502: "The upstream service (BHYT gateway) failed",
            503: "Not possible on this desk now (the virtual keyboard is unavailable or misconfigured)"}
    return {str(c): _json(_ERROR, text[c]) for c in (401, 403, *codes)}


_KEY_BODY: dict[str, Any] = {
    "oneOf": [
        {"type": "object", "required": ["can"], "properties": {
            "can": {"type": "string", "pattern": "^[0-9]{6}$",
                    "description": "Card access number: the last 6 digits of the 12-digit ID number"},
            "reader": {"type": "string"}}},
        {"type": "object", "required": ["id_number"], "properties": {
            "id_number": {"type": "string", "pattern": "^[0-9]{12}$"}, "reader": {"type": "string"}}},
        {"type": "object", "required": ["mrz"], "properties": {
            "mrz": {"type": "string", "description": "TD1 MRZ, lines separated by newlines"},
            "reader": {"type": "string"}}},
        {"type": "object", "required": ["document_number", "birth_date", "expiry_date"], "properties": {
            "document_number": {"type": "string"},
            "birth_date": {"type": "string", "description": "YYMMDD or YYYY-MM-DD"},
            "expiry_date": {"type": "string", "description": "YYMMDD or YYYY-MM-DD"},
            "reader": {"type": "string"}}},
    ]}

_EVENTS_DOC = """WebSocket of events. Authenticate with the header `Authorization: Bearer <token>`
on the upgrade request, or (browsers) by sending `{"type":"auth","token":"..."}` as the first
message within 5 seconds; otherwise the socket is closed with code 4401. The server then sends
`{"type":"hello"}` followed by events: reader_attached, reader_detached, card_present,
card_removed, qr_scanned, need_access, read_started, read_progress {file, done, total},
identity_ready {identity, verification, photo_url, timings},
verification {status, reason, plain, complete, passive, chip, active, issuer, notes},
lookup_started, lookup_result, intake_result {status: queued, idempotency_key},
intake_status {status: delivered|retrying|failed, receipt, attempts, error},
identity_cleared {reason}, wedge_result {read_id, ok, status: typed|refused, code, message, hint,
characters, window, source: page|hotkey} (the keyboard wedge; never the typed text),
error {code, message, hint}.
`?shape=compat` sends `{"event": ..., "data": ...}` (first `{"event":"connected"}`) with the field
names of the reader kits sold in Vietnam (idCode, personName, ...): new_card, card_removed,
reading, card_data (with faceImage, base64 JPEG), verify_result, bhyt_result, error.
A client that falls 256 events behind is disconnected. Every event has a `seq` (increasing;
it starts again at 1 when the agent restarts); every API answer has the header `X-Event-Seq`:
the seq of the last event published before the request was handled. An answer stamped with a
seq lower than an event already applied is older than that event: drop it (e.g. a `GET
/identity` made on connect that answers 404 after an identity_ready has arrived)."""


def openapi_document(server_url: str) -> dict[str, Any]:
    identity_view = {"$ref": "#/components/schemas/CurrentIdentity"}
    paths: dict[str, Any] = {
        "/health": {"get": {"summary": "Agent status", "operationId": "health",
                            "responses": {"200": _json({"type": "object"}, "Agent status"), **_errors()}}},
        "/readers": {"get": {"summary": "Card readers and their state", "operationId": "readers",
                             "responses": {"200": _json({"type": "object", "properties": {
                                 "readers": {"type": "array", "items": {"type": "object"}}}}, "Readers"),
                                 **_errors()}}},
        "/identity": {
            "get": {"summary": "The identity in memory (fields, verification, lookup result)",
                    "operationId": "getIdentity",
                    "parameters": [
                        {"name": "photo", "in": "query", "schema": {"type": "string", "enum": ["0", "1"]},
                         "description": "1: include the photo as base64 JPEG (identity.photo_jpeg_base64)"},
                        {"name": "compat", "in": "query", "schema": {"type": "string", "enum": ["0", "1"]},
                         "description": "1: add the reader-kit field names under compat"}],
                    "responses": {"200": _json(identity_view, "The identity"), **_errors(404)}},
            "delete": {"summary": "Drop the identity from memory", "operationId": "clearIdentity",
                       "responses": {"200": _json({"type": "object", "properties": {
                           "cleared": {"type": "boolean"}}}, "Cleared"), **_errors()}}},
        "/identity/photo.jpg": {"get": {
            "summary": "The face photo (JPEG)", "operationId": "getPhoto",
            "responses": {"200": {"description": "JPEG", "content": {"image/jpeg": {
                "schema": {"type": "string", "format": "binary"}}}}, **_errors(404)}}},
        "/read": {"post": {
            "summary": "Give the access key for the card on the reader (or the next one)",
            "operationId": "read",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _KEY_BODY}}},
            "responses": {"202": _json({"type": "object", "properties": {
                "status": {"type": "string", "enum": ["reading", "waiting_for_card"]}}}, "Accepted"),
                **_errors(400, 404, 413)}}},
        "/read/again": {"post": {
            "summary": "Read the card still lying on the reader again, with the keys that opened it",
            "operationId": "readAgain",
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"reader": {"type": "string"}}}}}},
            "responses": {"202": _json({"type": "object"}, "Reading"), **_errors(400, 409)}}},
        "/qr": {"post": {
            "summary": "A QR text read by the desk software's own scanner",
            "operationId": "qr",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}}}},
            "responses": {"202": _json({"type": "object"}, "Accepted"), **_errors(400, 413)}}},
        "/bhyt/lookup": {"post": {
            "summary": "Check the health-insurance card of the identity in memory",
            "operationId": "bhytLookup",
            "responses": {"200": _json({"type": "object"}, "Lookup result"), **_errors(404, 409, 502)}}},
        "/intake": {"post": {
            "summary": "Queue the identity in memory for the dossier intake (through the outbox); "
                       "again for the same read: the same dossier (a failed one is queued again)",
            "operationId": "intake",
            "responses": {"202": _json({"type": "object"}, "Queued"), **_errors(404, 409, 502)}}},
        "/wedge/type": {"post": {
            "summary": "Keyboard wedge: type the identity on show, as the card's 7-field QR text built from the "
                       "verified chip, into the one window whose title matches [wedge] window_title",
            "description": "Only on this explicit request (or the [wedge] hotkey), never on a read. Refusals, "
                           "with nothing typed: 403 wedge_disabled ([wedge] enabled = false); 404 no_identity; "
                           "409 wedge_unverified (the read is not verified), wedge_not_from_chip, "
                           "wedge_no_window, wedge_several_windows, wedge_focus_lost (typing stopped: "
                           "another window took the focus), wedge_busy; 503 wedge_unavailable (no X display, "
                           "no /dev/uinput), wedge_config. Each attempt is also told as a wedge_result event. "
                           "Neither the answer nor the event carries the typed text.",
            "operationId": "wedgeType",
            "responses": {"200": _json({"type": "object", "properties": {
                "read_id": {"type": "integer"}, "ok": {"type": "boolean"},
                "status": {"type": "string", "enum": ["typed"]}, "characters": {"type": "integer"},
                "window": {"type": "string", "description": "the title of the window typed into"},
                "backend": {"type": "string", "enum": ["x11", "uinput"]},
                "source": {"type": "string", "enum": ["page", "hotkey"]}}}, "Typed"),
                **_errors(404, 409, 503)}}},
        "/metrics": {"get": {
            "summary": "Prometheus metrics", "operationId": "metrics",
            "responses": {"200": {"description": "Prometheus text format 0.0.4",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}, **_errors()}}},
        "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                  "responses": {"200": _json({"type": "object"}, "OpenAPI 3"), **_errors()}}},
        "/events": {"get": {"summary": "Event stream (WebSocket)", "description": _EVENTS_DOC,
                            "operationId": "events",
                            "parameters": [{"name": "shape", "in": "query",
                                            "schema": {"type": "string", "enum": ["native", "compat"]}}],
                            "responses": {"101": {"description": "Switching to WebSocket"}, **_errors(400)}}},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "idagent local API", "version": __version__,
                 "description": "Chip ID card (CCCD) reader agent at a reception desk. Every route needs "
                                "`Authorization: Bearer <token>` (the token file is [api] token_file); "
                                "browser origins must be in [api] allowed_origins."},
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message", "hint"], "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"},
                        "hint": {"type": "string"}}}}},
                "Verification": {"type": "object", "properties": {
                    "status": {"type": "string", "enum": [s.value for s in VerificationStatus]},
                    "reason": {"type": "string"},
                    "plain": {"type": "string", "description": "the clerk's sentence, in Vietnamese"},
                    "complete": {"type": "boolean", "description": "every required data group was read"},
                    "passive": {"type": "object"}, "chip": {"type": "object"}, "active": {"type": "object"},
                    "issuer": {"type": "object"},
                    "notes": {"type": "array", "items": {"type": "string"}}}},
                "CurrentIdentity": {"type": "object", "properties": {
                    "read_id": {"type": "integer"}, "reader": {"type": "string"},
                    "identity": {"type": "object", "description": "Fields (ISO dates), sources, conflicts"},
                    "has_photo": {"type": "boolean"}, "photo_url": {"type": "string", "nullable": True},
                    "verification": {"$ref": "#/components/schemas/Verification"},
                    "lookup": {"type": "object", "nullable": True},
                    "intake": {"type": "object", "nullable": True}}},
            },
        },
    }
