"""Dossier intake: an identity, forwarded to the desk's intake endpoint through the outbox.

Wire format (what a receiver implements):
- ``POST <intake.url>`` with the dossier as JSON (``application/json``), or as a FHIR R4
  Patient (``application/fhir+json``) when ``intake.format = "fhir"``.
- ``Idempotency-Key``: a random UUID4 chosen when the dossier is queued; the same
  dossier always carries the same key, so the receiver must treat a repeated key as
  the same dossier (answer 2xx, do nothing again).
- ``X-Idagent-Timestamp``: Unix seconds at the time of this attempt.
- ``X-Idagent-Signature``: ``sha256=`` + hex HMAC-SHA256(key, timestamp + "." +
  idempotency key + "." + body), with the key from ``intake.hmac_key_file``. The
  timestamp is signed with the body so a captured request cannot be replayed later
  (receivers should refuse a timestamp more than 5 minutes off), and the idempotency key
  is signed so a captured request cannot be replayed within that window under another
  key to file the same dossier twice. Signing happens at each attempt, so a dossier retried hours later
  still carries a fresh timestamp.

Receiver answers: 2xx delivered (a JSON answer may name the dossier's receipt number in
one of ``RECEIPT_KEYS``; the counter page shows it to the clerk); 408, 425, 429 and 5xx retried with backoff; any other
4xx is permanent (the item is marked failed and kept for ``idagent outbox retry``).
Redirects are not followed (a POST redirected by 301/302/303 becomes a GET without the
dossier, whose 2xx would wrongly count as delivered): a 3xx is permanent too, the
configured url must be the receiver's final address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from agent.errors import ConfigError
from agent.forward.fhir import DEFAULT_CCCD_SYSTEM, FHIR_CONTENT_TYPE, identity_to_patient
from agent.forward.keyfile import read_secret
from agent.forward.outbox import Outbox, OutboxItem, Outcome
from agent.forward.settings import ForwardConfig
from agent.identity import FIELDS, Identity

logger = logging.getLogger(__name__)

KIND = "intake"
JSON_CONTENT_TYPE = "application/json"
HEADER_TIMESTAMP = "X-Idagent-Timestamp"
HEADER_SIGNATURE = "X-Idagent-Signature"
HEADER_IDEMPOTENCY = "Idempotency-Key"
SIGNATURE_PREFIX = "sha256="
MAX_SKEW_S = 300
RETRYABLE_STATUS = frozenset({408, 425, 429})
#: where a receiver's 2xx JSON answer may carry its receipt (the reference the citizen
#: is given), first match wins; a longer or non-text value is ignored
RECEIPT_KEYS = ("receipt", "receipt_number", "dossier_number", "reference")
MAX_RECEIPT_LEN = 64
DOSSIER_VERSION = 1


class IntakeConfigError(ConfigError):
    code = "intake_config"
    exit_code = 3
    hint = "Set [intake] url and hmac_key_file (a file holding the shared secret, chmod 600)."


# --------------------------------------------------------------------------- signing

def sign(key: bytes, timestamp: str, idem_key: str, body: bytes) -> str:
    message = timestamp.encode("ascii") + b"." + idem_key.encode("ascii") + b"." + body
    return SIGNATURE_PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()


def verify(key: bytes, timestamp: str, idem_key: str, body: bytes, signature: str, *, now: float,
           max_skew: float = MAX_SKEW_S) -> bool:
    """Receiver side (used by the local intake test server; a model for real receivers)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > max_skew:
        return False
    if not idem_key.isascii():
        return False
    return hmac.compare_digest(sign(key, timestamp, idem_key, body), signature)


# --------------------------------------------------------------------------- payload

@dataclass(frozen=True)
class IntakeSettings:
    url: str
    hmac_key: bytes = field(repr=False)
    fields: tuple[str, ...] = FIELDS
    include_photo: bool = False
    format: str = "json"
    timeout: float = 5.0
    fhir_identifier_system: str = DEFAULT_CCCD_SYSTEM

    @classmethod
    def from_config(cls, config: ForwardConfig) -> IntakeSettings:
        section = config.intake
        if not section.url:
            raise IntakeConfigError("[intake] url is not set")
        if not section.hmac_key_file:
            raise IntakeConfigError("[intake] hmac_key_file is not set")
        return cls(url=section.url, hmac_key=read_secret(section.hmac_key_file, what="[intake] hmac_key_file"),
                   fields=tuple(section.fields),
                   # config/idagent.toml documents both ways of asking for the face image
                   include_photo=section.include_photo, format=section.format,
                   timeout=section.timeout,
                   fhir_identifier_system=section.fhir_identifier_system)

    @property
    def content_type(self) -> str:
        return FHIR_CONTENT_TYPE if self.format == "fhir" else JSON_CONTENT_TYPE


def build_dossier(identity: Identity, settings: IntakeSettings, idem_key: str) -> bytes:
    """The request body for one dossier (UTF-8 JSON)."""
    chosen = frozenset(f for f in settings.fields if f in FIELDS)
    if settings.format == "fhir":
        doc: dict[str, Any] = identity_to_patient(identity, fields=chosen, cccd_system=settings.fhir_identifier_system,
                                                  photo=settings.include_photo)
        # the dossier's identity for the receiver's dedup, in FHIR's own slot
        doc["id"] = idem_key
    else:
        full = identity.to_dict(photo=settings.include_photo)
        doc = {"version": DOSSIER_VERSION, "dossier_id": idem_key,
               "identity": {name: full[name] for name in FIELDS if name in chosen},
               "sources": {k: v for k, v in full["sources"].items() if k in chosen}}
        if settings.include_photo and "photo_jpeg_base64" in full:
            doc["photo_jpeg_base64"] = full["photo_jpeg_base64"]
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def enqueue_dossier(outbox: Outbox, identity: Identity, settings: IntakeSettings) -> str:
    """Queue one dossier; returns its idempotency key (the receiver's dedup key)."""
    key = Outbox.new_key()
    body = build_dossier(identity, settings, key)
    outbox.put(KIND, body, content_type=settings.content_type, idem_key=key)
    logger.info("dossier queued (key %s, %d bytes)", key, len(body))
    return key


# --------------------------------------------------------------------------- delivery

def receipt_from(body: bytes) -> str | None:
    """The receipt number in a receiver's JSON answer (``RECEIPT_KEYS``), or None."""
    try:
        answer = json.loads(body[:4096]) if body else None
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(answer, dict):
        return None
    for key in RECEIPT_KEYS:
        value = answer.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            text = str(value).strip()
            if text and len(text) <= MAX_RECEIPT_LEN and text.isprintable():
                return text
    return None


class IntakeSender:
    """Delivers outbox items of kind ``intake``. Thread-safe: one HTTP session per thread."""

    def __init__(self, settings: IntakeSettings, *,
                 session_factory: Callable[[], requests.Session] = requests.Session,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._session_factory = session_factory
        self._clock = clock
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._session_factory()
            self._local.session = session
        return session

    def headers(self, item: OutboxItem) -> dict[str, str]:
        timestamp = str(int(self._clock()))
        return {"Content-Type": item.content_type + "; charset=utf-8", HEADER_IDEMPOTENCY: item.idem_key,
                HEADER_TIMESTAMP: timestamp,
                HEADER_SIGNATURE: sign(self.settings.hmac_key, timestamp, item.idem_key, item.body)}

    def __call__(self, item: OutboxItem) -> Outcome:
        try:
            response = self._session().post(self.settings.url, data=item.body, headers=self.headers(item),
                                            timeout=self.settings.timeout, allow_redirects=False)
        except requests.Timeout:
            return Outcome(False, "timeout")
        except requests.RequestException as exc:
            return Outcome(False, f"connection failed ({exc.__class__.__name__})")
        status = response.status_code
        # read the (small) body so the connection goes back to the pool; never store it
        body = response.content
        if 200 <= status < 300:
            return Outcome(True, receipt=receipt_from(body))
        permanent = 300 <= status < 500 and status not in RETRYABLE_STATUS
        return Outcome(False, f"HTTP {status}", permanent=permanent)
