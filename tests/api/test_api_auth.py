"""Token, Origin and Host checks on every route of the local API."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest
import requests
import websockets
import websockets.sync.client as ws_client
from api_fakes import Harness

from agent.api.auth import OriginPolicy, bearer, load_or_create_token
from agent.errors import ConfigError

#: every API route (method, path); the page and its assets are the only public ones
API_ROUTES = [
    ("GET", "/health"), ("GET", "/readers"), ("GET", "/identity"), ("DELETE", "/identity"),
    ("GET", "/identity/photo.jpg"), ("POST", "/read"), ("POST", "/read/again"), ("POST", "/qr"),
    ("POST", "/bhyt/lookup"),
    ("POST", "/intake"), ("POST", "/wedge/type"), ("GET", "/metrics"), ("GET", "/openapi.json"),
]


def test_every_api_route_is_in_the_list(harness: Harness) -> None:
    doc = harness.get("/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops if p != "/events"}
    assert documented == set(API_ROUTES)


@pytest.mark.parametrize("method,path", API_ROUTES)
def test_without_token_401(harness: Harness, method: str, path: str) -> None:
    resp = requests.request(method, harness.base + path, json={"can": "012345"}, timeout=5)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.json()["error"]["code"] == "no_token"


@pytest.mark.parametrize("method,path", API_ROUTES)
def test_wrong_token_401(harness: Harness, method: str, path: str) -> None:
    resp = requests.request(method, harness.base + path, headers={"Authorization": "Bearer nope" + "x" * 40},
                            timeout=5)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "bad_token"


@pytest.mark.parametrize("method,path", API_ROUTES + [("GET", "/"), ("GET", "/static/app.js")])
def test_foreign_origin_403_even_with_token(harness: Harness, method: str, path: str) -> None:
    resp = requests.request(method, harness.base + path,
                            headers=harness.headers(Origin="https://evil.example"), timeout=5)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "bad_origin"
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_rebinding_host_403(harness: Harness) -> None:
    resp = requests.get(harness.base + "/health", headers=harness.headers(Host=f"evil.example:{harness.daemon.port}"),
                        timeout=5)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "bad_host"


def test_cors_preflight_and_response_headers(harness_factory) -> None:  # type: ignore[no-untyped-def]
    h = harness_factory(allowed_origins=["http://his.local:8080"])
    pre = requests.options(h.base + "/identity", headers={
        "Origin": "http://his.local:8080", "Access-Control-Request-Method": "DELETE",
        "Access-Control-Request-Headers": "authorization"}, timeout=5)
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "http://his.local:8080"
    assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
    assert "DELETE" in pre.headers["Access-Control-Allow-Methods"]
    bad = requests.options(h.base + "/identity", headers={
        "Origin": "http://other.local:8080", "Access-Control-Request-Method": "GET"}, timeout=5)
    assert bad.status_code == 403
    ok = h.get("/health", headers=h.headers(Origin="http://his.local:8080"))
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == "http://his.local:8080"
    assert ok.headers["Vary"] == "Origin"


def test_page_is_public_holds_no_secret_and_has_csp(harness: Harness) -> None:
    for path in ("/", "/static/app.js", "/static/app.css"):
        resp = requests.get(harness.base + path, timeout=5)
        assert resp.status_code == 200
        assert harness.token not in resp.text
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert requests.get(harness.base + "/static/server.py", timeout=5).status_code == 404
    assert requests.get(harness.base + "/static/..%2Fserver.py", timeout=5).status_code == 404
    # an unknown route is refused before it is looked up: no probing without the token
    assert requests.get(harness.base + "/../agent/api/server.py", timeout=5).status_code == 401
    assert requests.get(harness.base + "/static/other.js", timeout=5).status_code == 404


def test_api_responses_are_not_cached(harness: Harness) -> None:
    assert harness.get("/health").headers["Cache-Control"] == "no-store"


def _ws_close_code(harness: Harness, first: str | None, origin: str | None = None) -> int:
    url = f"ws://127.0.0.1:{harness.daemon.port}/events"
    headers = {"Origin": origin or harness.base}
    with ws_client.connect(url, additional_headers=headers, open_timeout=5) as conn:
        if first is not None:
            conn.send(first)
        with pytest.raises(websockets.ConnectionClosed) as info:
            conn.recv(timeout=8)
        assert info.value.rcvd is not None
        return info.value.rcvd.code


def test_websocket_needs_token_first(harness: Harness) -> None:
    assert _ws_close_code(harness, json.dumps({"type": "auth", "token": "wrong" * 10})) == 4401
    assert _ws_close_code(harness, "hello") == 4401
    assert harness.daemon.metrics.auth_refusals.value(reason="bad_token") >= 1


def test_websocket_header_token_and_origin(harness: Harness) -> None:
    url = f"ws://127.0.0.1:{harness.daemon.port}/events"
    with ws_client.connect(url, additional_headers=harness.headers(), open_timeout=5) as conn:
        assert json.loads(conn.recv(timeout=5))["type"] == "hello"
    with pytest.raises(websockets.InvalidStatus) as info:
        ws_client.connect(url, additional_headers={"Origin": "https://evil.example", **harness.headers()},
                          open_timeout=5)
    assert info.value.response.status_code == 403


def test_refusals_logged_without_secrets(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="agent.api.middleware")
    requests.get(harness.base + "/identity?id=001099012345", headers={"Authorization": "Bearer s3cr3t-token-value"},
                 timeout=5)
    requests.get(harness.base + "/identity", headers={"Origin": "https://evil.example"}, timeout=5)
    text = caplog.text
    assert "bad_token" in text and "bad_origin" in text
    assert "s3cr3t" not in text and "001099012345" not in text and harness.token not in text


def test_token_file_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "api.token"
    token = load_or_create_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 40
    assert load_or_create_token(path) == token
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError):
        load_or_create_token(path)


def test_bearer_and_policy_units() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer   abc ") == "abc"
    assert bearer("Basic abc") is None and bearer(None) is None and bearer("Bearer ") is None
    policy = OriginPolicy(["http://127.0.0.1:8765"], "127.0.0.1")
    assert policy.origin_allowed(None)
    assert policy.origin_allowed("HTTP://127.0.0.1:8765")
    assert not policy.origin_allowed("http://127.0.0.1:8766")
    assert not policy.origin_allowed("null")
    assert policy.host_allowed("localhost:8765") and policy.host_allowed("[::1]:8765")
    assert not policy.host_allowed("attacker.example:8765") and not policy.host_allowed(None)
