"""Test doubles for the daemon's collaborators: a reader backend whose cards are
inserted and removed by the test, a pipeline that yields a chosen outcome (with
progress), a QR decoder and forwards. Synthetic people only."""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
import websockets.sync.client as ws_client

from agent.daemon import Daemon
from agent.errors import IdAgentError, NoCardError, NoReaderError, ParseError
from agent.forward.bhyt_codes import lookup
from agent.forward.bhyt_result import BhytResult
from agent.icao.checks import CheckResult, Status
from agent.icao.keys import AccessKey, CanKey
from agent.icao.sm import AccessDeniedError
from agent.icao.verify import Verification, VerificationStatus
from agent.identity import Identity
from agent.pipeline import QrScan, ReadOutcome, Verdict
from agent.readers.base import CardConnection, EventKind, ReaderBackend, ReaderEvent, ReaderInfo


#: a tiny valid JPEG (1x1 grey), made with Pillow for these tests
def tiny_jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (60, 80), (150, 120, 100)).save(buf, "JPEG")
    return buf.getvalue()


def synthetic_identity(**changes: Any) -> Identity:
    ident = Identity(
        id_number="001099012345", old_id_number="123456789", document_number="099012345",
        full_name="Nguyễn Văn An", date_of_birth=dt.date(1999, 3, 15), sex="M", nationality="Việt Nam",
        ethnicity="Kinh", religion="Không", place_of_origin="Xã Tân Phú, Huyện Đông Anh, Hà Nội",
        place_of_residence="Số 12 phố Hàng Bài, Phường Tràng Tiền, Hoàn Kiếm, Hà Nội",
        identifying_marks="Nốt ruồi cách 2cm dưới mép trái", date_of_issue=dt.date(2021, 5, 10),
        date_of_expiry=dt.date(2039, 3, 15), father_name="Nguyễn Văn Bình", mother_name="Trần Thị Cúc",
        photo_jpeg=tiny_jpeg(), sources={"full_name": "chip"})
    for name, value in changes.items():
        setattr(ident, name, value)
    return ident


def fake_verdict(status: str = "verified", *, passive: str = "valid", notes: list[str] | None = None,
                 complete: bool = True) -> Verdict:
    """A typed verdict as the real pipeline gives it: ``status`` overall, passive
    authentication ``passive``, CA/AA not offered by the chip, ``notes`` as given."""
    checks = Verification(CheckResult(Status(passive), f"passive authentication {passive}"),
                          CheckResult.not_supported("no DG14"), CheckResult.not_supported("no DG15"),
                          VerificationStatus(status), f"fake: {status}", list(notes or []))
    return Verdict.of(checks, complete)


class AccessDenied(AccessDeniedError):
    """What the access layer raises for a refused key (routed by class, not exit code)."""


class FakeConnection(CardConnection):
    def __init__(self, reader: str) -> None:
        self.reader = reader
        self.closed = False

    @property
    def extended_length(self) -> bool:
        return False

    def transmit(self, apdu: bytes) -> bytes:
        return b"\x90\x00"

    def close(self) -> None:
        self.closed = True


class FakeBackend(ReaderBackend):
    name = "fake"

    def __init__(self, readers: list[str]) -> None:
        self._readers = {r: False for r in readers}
        self._events: queue.Queue[ReaderEvent] = queue.Queue()
        for reader in readers:
            self._events.put(ReaderEvent(EventKind.READER_ATTACHED, reader))

    def insert(self, reader: str) -> None:
        self._readers[reader] = True
        self._events.put(ReaderEvent(EventKind.CARD_INSERTED, reader, b"\x3b\x88"))

    def remove(self, reader: str) -> None:
        self._readers[reader] = False
        self._events.put(ReaderEvent(EventKind.CARD_REMOVED, reader))

    def list_readers(self) -> list[ReaderInfo]:
        return [ReaderInfo(name, present, backend=self.name) for name, present in self._readers.items()]

    def connect(self, reader: str) -> CardConnection:
        if reader not in self._readers:
            raise NoReaderError("no such reader")
        if not self._readers[reader]:
            raise NoCardError("no card")
        return FakeConnection(reader)

    def wait_for_events(self, timeout: float) -> list[ReaderEvent]:
        out: list[ReaderEvent] = []
        try:
            out.append(self._events.get(timeout=timeout))
            while True:
                out.append(self._events.get_nowait())
        except queue.Empty:
            pass
        return out


class FakePipeline:
    """Reads "succeed" with ``identity`` when the key's CAN is ``can``; a reader named
    in ``stuck`` blocks until ``release`` is set."""

    def __init__(self, can: str = "012345", status: str = "verified", reasons: list[str] | None = None,
                 delay: float = 0.0, identity_factory: Any = synthetic_identity,
                 passive: str = "valid") -> None:
        self.can = can
        self.status = status
        self.passive = passive
        self.reasons = reasons or []
        self.delay = delay
        self.identity_factory = identity_factory
        self.stuck: set[str] = set()
        self.release = threading.Event()
        self.calls: list[str] = []

    def read(self, connection: CardConnection, key: AccessKey, on_progress: Any) -> ReadOutcome:
        self.calls.append(connection.reader)
        if connection.reader in self.stuck:
            self.release.wait(10)
        if not isinstance(key, CanKey) or key.can != self.can:
            raise AccessDenied("the chip refused the key")
        started = time.monotonic()
        for name, size in (("COM", 30), ("DG1", 90), ("DG2", 9000), ("DG13", 700), ("SOD", 1800)):
            for done in range(0, size + 1, max(1, size // 3)):
                on_progress(name, min(done, size), size)
        if self.delay:
            time.sleep(self.delay)
        return ReadOutcome(identity=self.identity_factory(),
                           verification=fake_verdict(self.status, passive=self.passive, notes=self.reasons),
                           read_seconds=time.monotonic() - started)


class FakeQrDecoder:
    def decode(self, text: str) -> QrScan:
        parts = text.split("|")
        if len(parts) < 7 or len(parts[0]) != 12 or not parts[0].isdigit():
            raise ParseError("not a card QR payload", source="QR")
        ident = Identity(id_number=parts[0], full_name=parts[2], sources={"full_name": "qr"})
        return QrScan(keys=[CanKey(parts[0][-6:])], identity=ident)


class FakeForwards:
    def __init__(self, bhyt: bool = True, intake: bool = True, delay: float = 0.0, fail: bool = False,
                 gate: threading.Event | None = None) -> None:
        self._bhyt, self._intake, self.delay, self.fail = bhyt, intake, delay, fail
        #: when given, a lookup waits for it to be set (a gateway that answers only when
        #: the test says so); ``lookup_entered`` is set once a lookup is waiting
        self.gate = gate
        self.lookup_entered = threading.Event()
        self.intakes: list[str] = []
        self.lookups = 0
        self.intake_listeners: list[Callable[[Any], None]] = []
        self.retried: list[str] = []

    def bhyt_enabled(self) -> bool:
        return self._bhyt

    def bhyt(self, identity: Identity) -> BhytResult:
        self.lookups += 1
        if self.gate is not None:
            self.lookup_entered.set()
            self.gate.wait(60)
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            class Upstream(IdAgentError):
                code = "bhyt_unavailable"
                exit_code = 7
            raise Upstream("the BHYT gateway did not answer")
        valid = lookup("000")
        return BhytResult(valid.status, valid.code, valid.message_vi, valid.message_en, valid.usable,
                          dob_sent=("15/03/1999",), dob_matched="full", card_code="DN4010112345678",
                          card_valid_from="2026-01-01", card_valid_to="2026-12-31")

    def intake_enabled(self) -> bool:
        return self._intake

    def intake(self, identity: Identity) -> dict[str, Any]:
        self.intakes.append(identity.id_number or "")
        return {"status": "queued", "outbox_id": len(self.intakes), "idempotency_key": f"key-{len(self.intakes)}"}

    def watch_intake(self, listener: Callable[[Any], None]) -> None:
        self.intake_listeners.append(listener)

    def retry_intake(self, idempotency_key: str) -> None:
        self.retried.append(idempotency_key)

    def report(self, report: Any) -> None:
        """What the outbox worker does after a delivery attempt."""
        for listener in self.intake_listeners:
            listener(report)

    def close(self) -> None:
        pass


class RecordingKeyboard:
    """The keyboard wedge's X11 backend boundary (agent.wedge.x11.X11Keyboard) as a double:
    a desktop with the given window titles, recording every window activated and every
    text typed. ``unavailable``: opening it fails as with no X display."""

    method = "recording double"

    def __init__(self, titles: list[str], *, unavailable: str = "") -> None:
        self.titles = titles
        self.unavailable = unavailable
        self.opened = 0
        self.activated: list[str] = []
        self.typed: list[str] = []
        self._focus: Any = None

    def factory(self, display: str | None, settle: float) -> RecordingKeyboard:
        from agent.wedge.x11 import WedgeUnavailable

        if self.unavailable:
            raise WedgeUnavailable(self.unavailable)
        self.opened += 1
        return self

    def find(self, pattern: Any) -> list[Any]:
        from agent.wedge.x11 import Target

        return [Target(_Window(i), t) for i, t in enumerate(self.titles) if pattern.search(t)]

    def activate(self, target: Any) -> None:
        self.activated.append(target.title)
        self._focus = target

    def focused(self) -> Any:
        return self._focus

    def type_text(self, text: str, target: Any) -> int:
        assert self._focus is target, "typed into a window that was not activated"
        self.typed.append(text)
        return len(text)

    def close(self) -> None:
        pass


class _Window:
    def __init__(self, id_: int) -> None:
        self.id = id_


class Harness:
    """A started daemon on a free port with fake collaborators, and HTTP/WS helpers."""

    def __init__(self, daemon: Daemon, backend: FakeBackend, pipeline: FakePipeline, forwards: FakeForwards) -> None:
        self.daemon, self.backend, self.pipeline, self.forwards = daemon, backend, pipeline, forwards
        self.base = f"http://127.0.0.1:{daemon.port}"
        self.token = daemon._api.token

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.base + path, headers=kw.pop("headers", self.headers()), timeout=5, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return requests.post(self.base + path, json=body, headers=kw.pop("headers", self.headers()), timeout=5, **kw)

    def ws(self, shape: str | None = None) -> ws_client.ClientConnection:
        url = f"ws://127.0.0.1:{self.daemon.port}/events" + (f"?shape={shape}" if shape else "")
        conn = ws_client.connect(url, additional_headers={"Origin": self.base}, open_timeout=5).__enter__()
        conn.send(json.dumps({"type": "auth", "token": self.token}))
        hello = json.loads(conn.recv(timeout=5))
        assert hello.get("type") == "hello" or hello.get("event") == "connected"
        return conn


def wait_for(conn: ws_client.ClientConnection, predicate: Callable[[dict[str, Any]], bool],
             timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("event not received in time")
        msg = json.loads(conn.recv(timeout=remaining))
        if predicate(msg):
            return msg


