"""The local API's token, and the checks on Origin and Host.

Threat model: the API listens on 127.0.0.1, but every web page the clerk opens runs in
a browser on the same machine and can send requests to it. So:

* every API call carries ``Authorization: Bearer <token>``; the token is random
  (32 bytes), lives in ``config.api.token_file`` (created 0600), and is compared in
  constant time. A bearer header (not a cookie) means a foreign page cannot ride on
  the clerk's session (no CSRF), and a "simple" cross-site request cannot carry it.
* a request whose ``Origin`` is not in ``config.api.allowed_origins`` gets 403, before
  the token is even looked at (CORS preflights included). WebSocket upgrades always
  carry an Origin from a browser, so this covers cross-site WebSocket hijacking.
* a request whose ``Host`` is not a loopback name (or the configured host) gets 403:
  this defeats DNS rebinding, where a foreign name resolves to 127.0.0.1.

The counter page (``/``, ``/static/*``) is served without the token: it holds no data
and no secret. The page learns the token from the URL fragment
(``http://127.0.0.1:8765/#token=...``): fragments are never sent to the server nor
logged in access logs or Referer headers; the page moves it into ``sessionStorage``
and removes it from the address bar at once.

WebSocket: browsers cannot set headers on a WebSocket, and a token in the query
string would land in logs and history, so the client sends it as its first message
``{"type": "auth", "token": "..."}`` within ``WS_AUTH_TIMEOUT`` seconds. Non-browser
clients may instead send the ``Authorization`` header on the upgrade request.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from agent.api.guard import parse_host
from agent.errors import ConfigError
from agent.logs import register_secret

logger = logging.getLogger(__name__)

TOKEN_BYTES = 32
WS_AUTH_TIMEOUT = 5.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def load_or_create_token(path: str | os.PathLike[str]) -> str:
    """Read the token; create the file (mode 0600, parents 0700) with a fresh random
    token when it does not exist. A token file readable by others is refused."""
    token_path = Path(path)
    if token_path.exists():
        mode = token_path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(f"API token file {token_path} is readable by other users (mode {mode:o})",
                              hint=f"Run: chmod 600 {token_path}")
        token = token_path.read_text(encoding="ascii").strip()
        if len(token) < 16:
            raise ConfigError(f"API token in {token_path} is too short",
                              hint="Delete the file; the agent creates a new random token.")
        register_secret(token)
        return token
    token_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    register_secret(token)
    fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    logger.info("created a new API token file at %s", token_path)
    return token


def token_matches(expected: str, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, else None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def normalise_origin(origin: str) -> str:
    parts = urlsplit(origin.strip())
    if not parts.scheme or not parts.netloc:
        return origin.strip().lower()
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


class OriginPolicy:
    def __init__(self, allowed_origins: list[str], bind_host: str) -> None:
        self.allowed = frozenset(normalise_origin(o) for o in allowed_origins)
        self.bind_host = bind_host.lower()

    def origin_allowed(self, origin: str | None) -> bool:
        """No Origin header: not a browser's cross-site request (curl, desk software)."""
        if origin is None:
            return True
        return normalise_origin(origin) in self.allowed

    def host_allowed(self, host_header: str | None, port: int | None = None) -> bool:
        """A well-formed Host (name[:port], nothing else: ``localhost:8765 x`` is refused)
        naming a loopback name or the configured host, and our port if it gives one."""
        parsed = parse_host(host_header)
        if parsed is None:
            return False
        name, given_port = parsed
        if port and given_port is not None and given_port != port:
            return False
        if self.bind_host in ("0.0.0.0", "::", ""):  # the operator opened it up on purpose
            return True
        return name in LOOPBACK_HOSTS or name == self.bind_host
