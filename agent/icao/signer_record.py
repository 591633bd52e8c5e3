"""The signer chain of the last chip read, kept for the operator (issue 11: is the CCCD's
Document Signer chained to "CSCA ePassport Vietnam"? Unconfirmed until a real card is
read; README, unconfirmed behaviour).

``record(state_dir, verification)`` writes ``<state_dir>/last_signer.json`` after a read:
only what identifies the *issuer's* PKI — the Document Signer's and CSCAs' subjects, the
countries, the issuing state, the statuses and reasons, the hash algorithm and the data
group numbers. Never the MRZ, names, ID numbers or photos: the reasons of passive
authentication name certificates and data-group numbers only. ``idagent trust
last-read`` prints it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.icao.verify import Verification

logger = logging.getLogger(__name__)

FILE_NAME = "last_signer.json"
#: passive-authentication details that describe the issuer's PKI, not the holder
_KEPT = ("document_signer", "chain", "signer_country", "csca_country", "hash_algorithm", "data_groups",
         "signing_time")


def summary(verification: Verification) -> dict[str, Any]:
    """What is kept of a ``Verification`` (see the module docstring)."""
    passive = verification.passive
    issuer = verification.issuer
    return {
        "recorded": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": verification.status,
        "passive": {"status": passive.status.value, "reason": passive.reason,
                    **{key: passive.details[key] for key in _KEPT if key in passive.details}},
        "chip": {"status": verification.chip.status.value, "reason": verification.chip.reason},
        "issuing_state": issuer.details.get("document_country", ""),
    }


def record(state_dir: str | Path, verification: Verification | None) -> None:
    """Write the summary (owner-only, replaced atomically). A failure is logged, never
    raised: this is a diagnostic, not part of the read."""
    if verification is None:
        return
    folder = Path(state_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{FILE_NAME}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(summary(verification), out, indent=2, ensure_ascii=False)
        tmp.replace(folder / FILE_NAME)
    except OSError as exc:
        logger.warning("could not record the last signer chain in %s: %s", folder, exc.strerror)


def load(state_dir: str | Path) -> dict[str, Any] | None:
    path = Path(state_dir) / FILE_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("unreadable %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None
