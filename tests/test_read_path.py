"""One read/verify path (agent.readpath): every [trust] option reaches a read through
each entry point: ``idagent read``, the daemon (a card laid on a reader) and the local
API (``POST /read`` then ``GET /identity``). The cards are the in-process virtual
chip's synthetic profiles; the trust folder is the test PKI's.

Each case turns ONE option and expects the verdict it implies, so an entry point that
drops the option (reads with the library default instead) fails the case whose
setting differs from that default."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from agent.api import render
from agent.cli import main
from agent.config import Config
from agent.daemon import Daemon
from agent.icao.keys import CanKey
from agent.readers.sim import SimBackend
from agent.sim.profile import load_profile, virtual_chip

ROOT = Path(__file__).resolve().parents[1]
TRUST = str(ROOT / "fixtures" / "pki" / "store")
READER = "Sim Reader 00"


@dataclass(frozen=True)
class Case:
    name: str
    profile: str
    trust: dict[str, Any]
    expected: str
    card: dict[str, Any] = field(default_factory=dict)


#: csca_dir: the test CSCAs vs an empty folder; check_crl: a DSC the test CRL revokes;
#: require_chip_auth: DG14 and DG15 skipped, so neither CA nor AA can run;
#: accepted_issuers: a Vietnamese card at a desk that takes German documents only
CASES = [
    Case("csca_dir=test PKI", "nguyen-van-an", {}, "verified"),
    Case("csca_dir=empty", "nguyen-van-an", {"csca_dir": "<empty>"}, "not_verified"),
    Case("check_crl=true", "nguyen-van-an+revoked-dsc", {"check_crl": True}, "not_verified"),
    Case("check_crl=false", "nguyen-van-an+revoked-dsc", {"check_crl": False}, "verified"),
    Case("require_chip_auth=true", "nguyen-van-an", {"require_chip_auth": True}, "not_verified",
         card={"skip_files": [3, 14, 15]}),
    Case("require_chip_auth=false", "nguyen-van-an", {"require_chip_auth": False}, "verified",
         card={"skip_files": [3, 14, 15]}),
    Case("accepted_issuers=VNM", "nguyen-van-an", {"accepted_issuers": ["VNM"]}, "verified"),
    Case("accepted_issuers=D", "nguyen-van-an", {"accepted_issuers": ["D"]}, "not_verified"),
]


def _trust(case: Case, tmp_path: Path) -> dict[str, Any]:
    trust = {"csca_dir": TRUST, **case.trust}
    if trust["csca_dir"] == "<empty>":
        empty = tmp_path / "empty-csca"
        empty.mkdir()
        trust["csca_dir"] = str(empty)
    return trust


def _toml(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_cli_read_applies_the_trust_option(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["[trust]"] + [f"{k} = {_toml(v)}" for k, v in _trust(case, tmp_path).items()]
    lines += ["[card]"] + [f"{k} = {_toml(v)}" for k, v in case.card.items()]
    config = tmp_path / "idagent.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    main(["--config", str(config), "read", "--sim", case.profile, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["verification"]["status"] == case.expected, doc["verification"]


class _Desk:
    """``Daemon.from_config`` (the production wiring) over a virtual reader."""

    def __init__(self, config: Config) -> None:
        self.backend = SimBackend((READER,))
        self.daemon = Daemon.from_config(config, backends=[self.backend], port=0)
        self.events: list[dict[str, Any]] = []
        self._seen = threading.Condition()
        self.daemon.hub.listeners.append(self._note)

    def _note(self, event: Any) -> None:
        with self._seen:
            self.events.append(render.native(event))
            self._seen.notify_all()

    def wait_event(self, kind: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                for event in self.events:
                    if event["type"] in (kind, "error"):
                        return event
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no {kind} event; got {[e['type'] for e in self.events]}"
                self._seen.wait(remaining)

    def lay_card(self, profile: str) -> None:
        self.backend.insert(READER, virtual_chip(load_profile(profile)))


@pytest.fixture
def desk_for(tmp_path: Path) -> Iterator[Any]:
    started: list[_Desk] = []

    def make(case: Case) -> _Desk:
        config = Config.defaults().replace("api", token_file=str(tmp_path / "api.token"))
        config = config.replace("trust", **_trust(case, tmp_path))
        config = config.replace("readers", poll_interval=0.05)
        if case.card:
            config = config.replace("card", **case.card)
        desk = _Desk(config)
        desk.daemon.start()
        started.append(desk)
        return desk

    yield make
    for desk in started:
        desk.daemon.stop()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_daemon_read_applies_the_trust_option(case: Case, desk_for: Any) -> None:
    desk = desk_for(case)
    desk.daemon.submit_key(CanKey(load_profile(case.profile).can))
    desk.lay_card(case.profile)
    event = desk.wait_event("verification")
    assert event["type"] == "verification", event
    assert event["status"] == case.expected, event


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_api_read_applies_the_trust_option(case: Case, desk_for: Any) -> None:
    desk = desk_for(case)
    base = f"http://127.0.0.1:{desk.daemon.port}"
    headers = {"Authorization": f"Bearer {desk.daemon._api.token}"}
    answer = requests.post(f"{base}/read", json={"can": load_profile(case.profile).can}, headers=headers, timeout=5)
    assert answer.status_code == 202, answer.text
    desk.lay_card(case.profile)
    desk.wait_event("verification")
    identity = requests.get(f"{base}/identity", headers=headers, timeout=5)
    assert identity.status_code == 200, identity.text
    assert identity.json()["verification"]["status"] == case.expected, identity.json()["verification"]
