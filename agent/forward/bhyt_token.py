"""How long a BHYT gateway token lives, from whatever its login answer says.

domain.md lists ``expires_in`` in the login answer without its unit. Gateways and their
proxies have been seen to send a lifetime in seconds, a Unix time (seconds or
milliseconds), an ISO 8601 date-time, a ``dd/MM/yyyy HH:mm:ss`` local time, or nothing
(issue 14). The client refreshes the token before it expires whenever the value allows
it; without any usable value the token's own ``exp`` claim is used when the access
token is a JWT (RFC 7519 §4.1.4), and failing that the token is used until a 401.

A date-time without an offset is read as Vietnam time (UTC+7): the gateway is run in
Vietnam; unconfirmed, see the README's table of unconfirmed behaviour.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import math
from typing import Any

logger = logging.getLogger(__name__)

VIETNAM_TZ = dt.timezone(dt.timedelta(hours=7))
#: a number above this is a point in time, not a lifetime (2001-09-09 in Unix seconds;
#: no token lives 31 years)
UNIX_SECONDS_FLOOR = 1e9
#: above this, a Unix time in milliseconds (year 33658 in seconds)
UNIX_MILLIS_FLOOR = 1e12
LOCAL_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S")


def token_expiry(expires_in: Any, access_token: str = "", *, now: float) -> float | None:
    """Seconds the token has left at wall-clock time ``now`` (Unix seconds), or None
    when nothing tells (then the caller uses the token until the gateway says 401)."""
    left = _from_value(expires_in, now)
    if left is None and not _present(expires_in):
        left = _from_jwt(access_token, now)
    if left is not None and left <= 0:
        # already past: our clock or the gateway's is off; refreshing before every
        # lookup would only double the traffic, so fall back to "until a 401"
        logger.warning("BHYT token expiry lies %.0f s in the past (clock skew?): used until a 401", -left)
        return None
    return left


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _from_value(value: Any, now: float) -> float | None:
    if isinstance(value, bool) or not _present(value):
        return None
    if isinstance(value, int | float):
        return _from_number(float(value), now)
    text = str(value).strip()
    try:
        return _from_number(float(text), now)
    except ValueError:
        pass
    when = _parse_datetime(text)
    if when is None:
        logger.warning("BHYT token expires_in has an unknown shape: used until a 401")
        return None
    return when.timestamp() - now


def _from_number(number: float, now: float) -> float | None:
    if not math.isfinite(number) or number <= 0:
        return None
    if number >= UNIX_MILLIS_FLOOR:
        return number / 1000 - now
    if number >= UNIX_SECONDS_FLOOR:
        return number - now
    return number


def _parse_datetime(text: str) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        when = None
        for pattern in LOCAL_FORMATS:
            try:
                when = dt.datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
    if when is None:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=VIETNAM_TZ)


def _from_jwt(token: str, now: float) -> float | None:
    """The ``exp`` claim of a JWT access token (read, not verified: only for timing)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp) - now
