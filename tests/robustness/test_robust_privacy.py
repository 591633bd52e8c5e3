"""Privacy audit (issue 8, part 3): with logging at DEBUG, run full chip reads, a spread
of the fault matrix, and the desk flow (daemon + local API + BHYT lookup + intake
outbox, agent.demo's in-process stack), then scan everything they leave behind:

* the log file (agent.logs.setup_logging at DEBUG, every logger),
* the state folder: outbox SQLite file and its -wal/-shm, keys, token,
* every file created under the temp folder during the run (TMPDIR is pointed at a
  private folder for the test, so other test runs cannot pollute it),
* crash reports (core / *.crash / faulthandler dumps) in those folders,

for the synthetic people's ID numbers (12-digit, old 9-digit, document number), CAN,
names (with and without diacritics, any case, the MRZ spelling, each name word of 4+
letters), MRZ lines, birth dates, addresses and a slice of the DG2 photo (raw, hex,
base64): none may appear. Then memory: after the card is removed, or after the
retention time, GET /identity answers 404, the daemon's store holds nothing, no live
``Identity`` object still carries data, and no string reachable from the daemon object
holds the ID number or the name.
"""

from __future__ import annotations

import base64
import gc
import logging
import re
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from agent.sim import faults as FM

PROFILES = ("nguyen-van-an", "le-hoang-duc")


def fold(text: str) -> str:
    """Casefold, strip diacritics (đ → d): 'Nguyễn' and 'NGUYEN' compare equal."""
    decomposed = unicodedata.normalize("NFD", text.casefold().replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass
class Needles:
    """What must never be found, for a set of synthetic people."""

    texts: dict[str, str] = field(default_factory=dict)  # folded needle → what it is
    blobs: dict[bytes, str] = field(default_factory=dict)  # raw bytes → what it is

    def add_text(self, value: str, what: str) -> None:
        if value and value.strip():
            self.texts[fold(value.strip())] = what

    def pattern(self) -> re.Pattern[str]:
        words = sorted(self.texts, key=len, reverse=True)
        return re.compile(r"(?<![0-9a-z])(?:" + "|".join(re.escape(w) for w in words) + r")(?![0-9a-z])")

    def find(self, text: str) -> list[str]:
        found = {self.texts[m.group(0)] for m in self.pattern().finditer(fold(text))}
        return sorted(found)

    def find_bytes(self, data: bytes) -> list[str]:
        found = [what for blob, what in self.blobs.items() if blob in data]
        text = data.decode("utf-8", "ignore")
        found += self.find(text)
        if b"\x00" in data[:4096]:  # binary file (SQLite): also UTF-16 text
            found += self.find(data.decode("utf-16-le", "ignore"))
        return sorted(set(found))


def needles_for(profiles: tuple[str, ...] = PROFILES) -> Needles:
    from agent.icao.lds.dg1 import parse_dg1
    from agent.icao.lds.dg2 import parse_dg2
    from agent.icao.lds.files import DATA_GROUPS
    from agent.sim.profile import ascii_fold, build_card, load_spec

    out = Needles()
    for name in profiles:
        p = load_spec(name).person
        for value, what in ((p.id_number, "ID number"), (p.old_id_number, "old ID"),
                            (p.document_number, "document number"), (p.can, "CAN"),
                            (p.place_of_residence, "address"), (p.place_of_origin, "place of origin"),
                            (p.identifying_marks, "identifying marks"), (p.card_uuid, "card UUID"),
                            (p.date_of_birth.strftime("%d/%m/%Y"), "birth date"),
                            (p.date_of_birth.isoformat(), "birth date"),
                            (p.date_of_birth.strftime("%d%m%Y"), "birth date")):
            out.add_text(value, what)
        for person_name, what in ((p.full_name, "name"), (p.father_name, "father"), (p.mother_name, "mother"),
                                  (p.spouse_name, "spouse")):
            out.add_text(person_name, what)
            out.add_text(ascii_fold(person_name), what)
            for word in person_name.split():
                if len(fold(word)) >= 4:
                    out.add_text(word, f"{what} (word)")
        files = build_card(name).files
        mrz = parse_dg1(files[DATA_GROUPS[1].fid]).mrz
        lines = getattr(mrz, "lines", None) or ()
        for i, line in enumerate(lines, 1):
            out.add_text(line, f"MRZ line {i}")
        out.add_text(f"{p.mrz_primary}<<{p.mrz_secondary.replace(' ', '<')}", "MRZ name")
        jpeg = parse_dg2(files[DATA_GROUPS[2].fid]).faces[0].jpeg
        middle = len(jpeg) // 2
        piece = jpeg[middle:middle + 48]
        out.blobs[piece[:32]] = "photo bytes"
        out.blobs[piece.hex().encode()] = "photo (hex)"
        out.blobs[piece.hex().upper().encode()] = "photo (hex)"
        out.blobs[base64.b64encode(piece)[:40]] = "photo (base64)"
    return out


NEEDLES = needles_for()


def test_needles_cover_every_kind_and_the_scanner_finds_them() -> None:
    kinds = set(NEEDLES.texts.values()) | set(NEEDLES.blobs.values())
    assert {"ID number", "old ID", "CAN", "name", "MRZ line 1", "MRZ line 3", "birth date",
            "photo bytes", "photo (base64)"} <= kinds
    # the scanner itself: diacritics, case, MRZ spelling, digits not inside longer numbers
    assert NEEDLES.find("read done for NGUYEN VAN AN") == ["name"]
    assert NEEDLES.find("holder nguyễn") != []  # a name word, folded
    assert NEEDLES.find("id=001099012345;") == ["ID number"]
    assert "CAN" in NEEDLES.find("can 012345 ok")
    assert NEEDLES.find("t=100109901234567") == []  # inside a longer number: not an ID
    assert NEEDLES.find("chip read: 7 files, complete=True, 106 APDUs") == []


# -- the scan -------------------------------------------------------------------------------

CRASH_NAMES = re.compile(r"(^core(\.\d+)?$|\.crash$|crash|faulthandler|\.dmp$)", re.IGNORECASE)


def scan_tree(root: Path, skip: Callable[[Path], bool] = lambda p: False) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or skip(path):
            continue
        found = NEEDLES.find_bytes(path.read_bytes())
        if found:
            hits[str(path.relative_to(root))] = found
    return hits


def crash_reports(*roots: Path) -> list[str]:
    return [str(p) for root in roots for p in root.rglob("*") if p.is_file() and CRASH_NAMES.search(p.name)]


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[Path]:
    """Every logger at DEBUG, through the agent's own redacting handler, into a file."""
    from agent.logs import setup_logging

    path = tmp_path / "agent-debug.log"
    root = logging.getLogger()
    level = root.level
    with path.open("w", encoding="utf-8") as stream:
        handler = setup_logging("DEBUG", "plain", stream=stream)
        try:
            yield path
        finally:
            root.removeHandler(handler)
            root.setLevel(level)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR for the code under test: whatever it creates there is scanned."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _assert_clean(log: Path, *folders: Path) -> None:
    text = log.read_text(encoding="utf-8")
    assert NEEDLES.find(text) == [], f"personal data in the DEBUG log: {NEEDLES.find(text)}"
    assert NEEDLES.find_bytes(log.read_bytes()) == []
    for folder in folders:
        assert scan_tree(folder, skip=lambda p: p == log) == {}, f"personal data in files under {folder}"
    assert crash_reports(*folders) == []


# -- chip reads and faults ------------------------------------------------------------------


def test_chip_reads_and_faults_leave_no_personal_data(debug_log: Path, private_tmp: Path) -> None:
    store = FM.load_store()
    results = []
    for protocol in ("BAC", "PACE"):
        card = FM.make_card(protocol, store)  # includes a clean, verified read
        for kind in FM.IN_PROCESS_KINDS:
            for case in FM.cases(card, [kind], step=13, offset=FM.IN_PROCESS_KINDS.index(kind),
                                 sws=FM.UNEXPECTED_SWS[1:2]):
                results.append(FM.run_case(card, case))
    assert all(r.passed for r in results), [r.case.label for r in results if not r.passed]
    text = debug_log.read_text(encoding="utf-8")
    # the log really is the DEBUG traffic log of those reads (else the scan proves nothing)
    assert "chip read: 7 files" in text and "SM > " in text and len(text.splitlines()) > 2000
    _assert_clean(debug_log, private_tmp)


# -- the desk: daemon, API, forwards --------------------------------------------------------


def _get(stack: Any, path: str, **kw: Any) -> requests.Response:
    return requests.get(stack.base + path, headers={"Authorization": f"Bearer {stack.token}"}, timeout=5, **kw)


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def lingering_identities() -> list[str]:
    """Live Identity objects that still carry a personal field, whatever made them:
    after the flow, none may be left, in this process, by anything (an earlier test's
    identity kept alive is a leak of the agent, such as the deadline workers that held
    a failed read's frames, or of that test, and fails this check as well)."""
    from agent.identity import Identity

    gc.collect()
    out = []
    for obj in gc.get_objects():
        if issubclass(type(obj), Identity) and any(getattr(obj, f, None) for f in
                                             ("id_number", "full_name", "document_number", "photo_jpeg")):
            out.append(repr(obj))
    return out


def reachable_personal_strings(root: object, stop: tuple[type, ...]) -> list[str]:
    """Strings/bytes reachable from ``root`` (through gc referents) holding personal
    data; objects of the ``stop`` types (the virtual card: the citizen's own card,
    the test services standing in for BHYT and the intake system) are not entered."""
    import types
    import weakref

    leaf = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.CodeType,
            weakref.ProxyType, weakref.CallableProxyType, weakref.ReferenceType)
    seen: set[int] = set()
    todo = [root]
    found: set[str] = set()
    while todo and len(seen) < 300_000:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        kind = type(obj)
        if issubclass(kind, leaf) or issubclass(kind, stop):
            continue  # (weak proxies first: isinstance on a dead one raises)
        if isinstance(obj, str):
            if len(obj) >= 4:
                # whole values only: single name words also occur in config (the BHYT
                # officer "Trần Thị Thu" shares "Trần" with a card holder's mother)
                found.update(w for w in NEEDLES.find(obj) if not w.endswith("(word)"))
            continue
        if isinstance(obj, (bytes, bytearray)):
            if len(obj) >= 32:
                found.update(w for b, w in NEEDLES.blobs.items() if b in obj)
            continue
        todo.extend(gc.get_referents(obj))
    return sorted(found)


def test_desk_flow_leaves_nothing_behind_and_forgets_the_identity(debug_log: Path, private_tmp: Path,
                                                                  tmp_path: Path) -> None:
    from agent.demo import desk_stack

    state = tmp_path / "state"
    with desk_stack(backend="sim", state_dir=state) as stack:
        ok, seen = FM_check_once(stack)
        assert ok, seen
        # the identity is served while the card is on the reader (sanity for the checks below)
        resp = _get(stack, "/identity")
        assert resp.status_code == 200 and resp.json()["identity"]["id_number"] == "001099012345"
        assert _get(stack, "/identity/photo.jpg").content.startswith(b"\xff\xd8")
        # the clerk sends the dossier: it goes through the encrypted SQLite outbox
        intake = requests.post(stack.base + "/intake", json={}, timeout=5,
                               headers={"Authorization": f"Bearer {stack.token}"})
        assert intake.status_code == 202, intake.text

        # 1) card removed: dropped at once
        stack.lift()
        assert _wait(lambda: _get(stack, "/identity").status_code == 404, 5.0)
        assert stack.daemon.store.get() is None
        assert lingering_identities() == []
        stop = _stop_types(stack)
        assert reachable_personal_strings(stack.daemon, stop) == []

        # 2) card left on the reader: dropped when the retention time passes
        stack.daemon.store.ttl = 1.0
        stack.tap()  # the QR again: it carries the CAN that opens the chip
        assert _wait(lambda: _get(stack, "/identity").status_code == 200, 10.0)
        assert _wait(lambda: _get(stack, "/identity").status_code == 404, 10.0)
        assert stack.daemon.store.get() is None
        assert lingering_identities() == []
        assert reachable_personal_strings(stack.daemon, stop) == []
        stack.lift()
        # the intake delivered through the outbox (so the outbox file saw the payload)
        assert _wait(lambda: len(stack.intake.state.dossiers) >= 1, 10.0)
        # while the agent runs: the outbox file and its -wal/-shm as they are now
        assert scan_tree(state) == {}
    files = {p.name for p in state.iterdir()}
    assert any(name.startswith("outbox.sqlite3") for name in files), files
    text = debug_log.read_text(encoding="utf-8")
    assert "API" in text or "agent started" in text
    _assert_clean(debug_log, state, private_tmp)


def FM_check_once(stack: Any) -> tuple[bool, dict[str, Any]]:  # noqa: N802 - mirrors agent.demo.check_once
    from agent.demo import check_once

    return check_once(stack, timeout=30.0)


def _stop_types(stack: Any) -> tuple[type, ...]:
    from agent.readers.sim import SimBackend
    from agent.sim.card import VirtualCard

    return (SimBackend, VirtualCard, type(stack.gateway), type(stack.intake))


def test_the_scan_finds_a_planted_leak(tmp_path: Path) -> None:
    # negative control for the scans above: a log line, an SQLite-like binary with a
    # UTF-16 name, a photo slice and a crash dump are all caught
    (tmp_path / "a.log").write_text("INFO read 001099012345 ok\n", encoding="utf-8")
    (tmp_path / "b.sqlite3").write_bytes(b"SQLite format 3\x00\x00\x00" + "Lê Hoàng Đức".encode("utf-16-le"))
    photo = next(blob for blob, what in NEEDLES.blobs.items() if what == "photo bytes")
    (tmp_path / "c.bin").write_bytes(b"\x00" * 10 + photo)
    (tmp_path / "core.1234").write_bytes(b"")
    hits = scan_tree(tmp_path)
    assert hits == {"a.log": ["ID number"], "b.sqlite3": ["name"], "c.bin": ["photo bytes"]}
    assert crash_reports(tmp_path) == [str(tmp_path / "core.1234")]
