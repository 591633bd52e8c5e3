"""What the daemon needs from the layers below: small interfaces, and their real
implementations built from the config.

The daemon does not know how a chip is opened or verified, how a QR payload is parsed,
nor how the BHYT gateway is called: it holds one object per job. Tests and the bench
inject their own.

* ``ChipPipeline.read(connection, key, on_progress) -> ReadOutcome``: open the chip
  with the key, read, verify (real: ``IcaoPipeline`` over ``agent.readpath.ChipReader``,
  the read path ``idagent read`` uses too).
* ``QrDecoder.decode(text or bytes) -> QrScan``: parse a card QR payload (real:
  ``CccdQrDecoder`` over ``agent.qr``).
* ``Forwards``: BHYT lookup (a ``BhytResult``) and dossier intake (real:
  ``ConfiguredForwards`` over ``agent.forward``).
* ``QrSource.payloads(stop)``: scanners and cameras (``make_qr_sources``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agent.errors import IdAgentError
from agent.forward.bhyt_input import MissingInputError
from agent.forward.bhyt_result import BhytResult
from agent.icao.access import AccessInfo
from agent.icao.checks import Status
from agent.icao.keys import AccessKey, CanKey, MrzKey
from agent.icao.verify import Verification, VerificationStatus
from agent.identity import Identity
from agent.readers.base import CardConnection

if TYPE_CHECKING:
    from agent.config import Config
    from agent.forward.bhyt import BhytClient
    from agent.forward.worker import ForwardingService
    from agent.readpath import ChipReader

logger = logging.getLogger(__name__)

#: on_progress(file_name, bytes_done, bytes_total)
ProgressFn = Callable[[str, int, int], None]



@dataclass(frozen=True)
class Verdict:
    """What the desk knows of a read's authenticity, typed from the chip to the edge:
    the checks (``agent.icao.verify.Verification``; None when none could run), whether
    every required data group was read (a partial read never passes as verified:
    ``agent.icao.read`` already made its status not_verified), and the clerk's sentence.
    The desk, the reader-kit service and the wedge decide on these typed fields; its JSON
    (the ``verification`` of the API, the counter page and the events) is written only
    in the API (``agent.api.render.verdict_body``)."""

    checks: Verification | None
    complete: bool = True
    #: one Vietnamese sentence for the clerk (``Verdict.of`` words it from the checks)
    plain: str = ""

    @classmethod
    def of(cls, checks: Verification | None, complete: bool = True) -> Verdict:
        plain = plain_reason(checks)
        if not complete:
            plain += " Thẻ chưa được đọc đủ dữ liệu."
        return cls(checks, complete, plain)

    @property
    def status(self) -> VerificationStatus:
        return self.checks.status if self.checks is not None else VerificationStatus.ERROR

    @property
    def reason(self) -> str:
        return self.checks.reason if self.checks is not None else "not verified"

    @property
    def verified(self) -> bool:
        return self.status is VerificationStatus.VERIFIED

    @property
    def data_altered(self) -> bool:
        """Passive authentication failed: the chip's data do not match their signature
        (or DG1 names another country than the signer's, ``agent.icao.issuer``)."""
        return self.checks is not None and self.checks.passive.status is Status.INVALID



@dataclass(frozen=True)
class KeyUsed:
    """All the desk knows of how a chip was opened when its pipeline did not say (a
    stand-in pipeline leaves ``ReadOutcome.access`` None): the kind of key that opened
    it. Its JSON is ``agent.api.render.access_body``'s."""

    #: "can" or "mrz"
    kind: str

    @classmethod
    def of(cls, key: AccessKey) -> KeyUsed:
        return cls("can" if isinstance(key, CanKey) else "mrz" if isinstance(key, MrzKey) else "")


@dataclass
class ReadOutcome:
    identity: Identity
    verification: Verdict
    #: wall time of the card I/O and parsing
    read_seconds: float = 0.0
    #: how the chip was opened: the chip read's own record (protocol, cipher, key type,
    #: PACE mapping …); None when the pipeline does not say, and the desk then records
    #: the kind of key it gave (``KeyUsed``). Written as JSON only where it is emitted
    #: (``agent.api.render.access_body``).
    access: AccessInfo | KeyUsed | None = None
    #: the files as read ("SOD", "DG1" ...), raw: the reader-kit protocol sends them
    files: dict[str, bytes] = field(default_factory=dict, repr=False)


class ChipPipeline(Protocol):
    def read(self, connection: CardConnection, key: AccessKey, on_progress: ProgressFn) -> ReadOutcome:
        """Raise ``agent.icao.sm.AccessDeniedError`` when the chip refuses the key
        (``PaceInterruptedError`` when PACE broke off: the next key is tried)."""


@dataclass
class QrScan:
    #: keys to try, best first (the CAN from the ID number, then MRZ data)
    keys: list[AccessKey]
    identity: Identity
    at: float = field(default_factory=time.monotonic)


class QrDecoder(Protocol):
    def decode(self, text: str | bytes) -> QrScan:
        """Raise ``ParseError`` for a payload that is not a card's QR."""


class Forwards(Protocol):
    def bhyt_enabled(self) -> bool: ...

    def bhyt(self, identity: Identity) -> BhytResult:
        """What the gateway said about the card (a gateway that is down is a result too:
        ``gateway_error``, ``gateway_unavailable``). Raise an IdAgentError when no check
        can be made (``BhytInputError``: the identity lacks or garbles what it needs)."""

    def intake_enabled(self) -> bool: ...

    def intake(self, identity: Identity) -> dict[str, Any]:
        """Queue the identity for intake; a JSON-ready receipt."""

    def watch_intake(self, listener: Callable[[Any], None]) -> None:
        """Call ``listener`` with each delivery report of a queued dossier
        (``agent.forward.worker.DeliveryReport``), from the delivering thread."""

    def retry_intake(self, idempotency_key: str) -> None:
        """Queue again a dossier whose delivery failed for good."""

    def close(self) -> None: ...


class QrSource(Protocol):
    """A scanner or a camera that yields QR payloads."""

    name: str

    def payloads(self, stop: threading.Event) -> Iterator[bytes | str]:
        """Yield payloads until ``stop`` is set; survive unplugging where possible."""


# ---------------------------------------------------------------------- verification words

#: what the clerk reads under the badge: plain words, no protocol names
PLAIN_STATUS: dict[VerificationStatus, str] = {
    VerificationStatus.VERIFIED: "Dữ liệu trong chip do cơ quan cấp thẻ ký và chip là chip thật.",
    VerificationStatus.PROBABLE_CLONE: "Chữ ký dữ liệu đúng nhưng chip không chứng minh được là chip gốc: "
                                       "có thể là thẻ sao chép.",
    VerificationStatus.ERROR: "Không kiểm tra được chữ ký số của thẻ.",
}


def plain_reason(checks: Verification | None) -> str:
    """One Vietnamese sentence for the clerk, from the checks' statuses (agent.icao.verify)."""
    if checks is None:
        return PLAIN_STATUS[VerificationStatus.ERROR]
    if checks.status in PLAIN_STATUS:
        return PLAIN_STATUS[checks.status]
    passive = checks.passive.status
    if passive is Status.INVALID:
        return "Dữ liệu trong chip không khớp chữ ký số: thông tin có thể đã bị sửa."
    if passive is Status.UNTRUSTED:
        return "Không xác minh được cơ quan cấp thẻ (chưa có chứng thư gốc tin cậy)."
    if passive in (Status.ERROR, Status.NOT_CHECKED):
        return "Không kiểm tra được chữ ký số của thẻ."
    if Status.INVALID in (checks.chip.status, checks.active.status):
        return "Chip không chứng minh được là chip gốc."
    return "Chip không hoàn tất bước kiểm tra chip thật."


# ---------------------------------------------------------------------- real implementations

class IcaoPipeline:
    """The daemon's view of ``agent.readpath.ChipReader`` (the one read path, shared with
    ``idagent read``): a read with one key, as a ``ReadOutcome``."""

    def __init__(self, reader: ChipReader, state_dir: str | None = None) -> None:
        self.reader = reader
        #: where the signer chain of the last read is kept ('idagent trust last-read')
        self.state_dir = state_dir

    @classmethod
    def from_config(cls, config: Config) -> IcaoPipeline:
        from agent.readpath import ChipReader

        return cls(ChipReader.from_config(config), config.agent.state_dir)

    def read(self, connection: CardConnection, key: AccessKey, on_progress: ProgressFn) -> ReadOutcome:
        from agent.identity.from_chip import identity_of

        started = time.monotonic()
        read = self.reader.read(connection, key, on_progress=on_progress)
        elapsed = time.monotonic() - started
        if self.state_dir is not None:
            from agent.icao import signer_record

            signer_record.record(self.state_dir, read.verification)  # for 'idagent trust last-read'
        verification = Verdict.of(read.verification, read.complete)
        return ReadOutcome(identity=identity_of(read), verification=verification, read_seconds=elapsed,
                           access=read.access, files=dict(read.files))


class CccdQrDecoder:
    """The card's QR payload (repaired, parsed) → access keys + a QR identity."""

    def __init__(self, no_expiry_year: int | None = 2099) -> None:
        self.no_expiry_year = no_expiry_year

    def decode(self, text: str | bytes) -> QrScan:
        from agent.identity.from_qr import identity_from_qr
        from agent.qr.access_keys import access_keys_from_qr
        from agent.qr.payload import read_payload

        result = read_payload(text)
        if result.card is None:
            assert result.error is not None
            raise result.error
        keys = access_keys_from_qr(result.card, no_expiry_year=self.no_expiry_year)
        identity = identity_from_qr(result.card)
        identity.qr_text = result.text
        return QrScan(keys=list(keys), identity=identity)


class ConfiguredForwards:
    """BHYT lookups through ``agent.forward.bhyt`` and intake through the outbox, as
    the config enables them. The daemon runs ``bhyt`` on its own executor."""

    def __init__(self, config: Config) -> None:
        self._bhyt: BhytClient | None = None
        self._intake: ForwardingService | None = None
        if config.bhyt.enabled:
            from agent.forward.bhyt import BhytClient, BhytSettings

            self._bhyt = BhytClient(BhytSettings.from_config(config))
        if config.intake.enabled:
            from agent.forward.worker import ForwardingService

            self._intake = ForwardingService(config).start()

    def bhyt_enabled(self) -> bool:
        return self._bhyt is not None

    def bhyt(self, identity: Identity) -> BhytResult:
        if self._bhyt is None:
            raise IdAgentError("BHYT lookup is not configured")
        if not identity.id_number or not identity.full_name or identity.date_of_birth is None:
            raise MissingInputError("Thiếu số CCCD, họ tên hoặc ngày sinh để tra cứu")
        # maThe: the 12-digit ID number, as hospital clients send it (domain.md, unconfirmed officially)
        return self._bhyt.check(identity.id_number, identity.full_name, identity.date_of_birth)

    def intake_enabled(self) -> bool:
        return self._intake is not None

    def intake(self, identity: Identity) -> dict[str, Any]:
        if self._intake is None:
            raise IdAgentError("intake is not configured")
        key = self._intake.forward(identity)
        return {"status": "queued", "idempotency_key": key}

    def watch_intake(self, listener: Callable[[Any], None]) -> None:
        if self._intake is not None:
            self._intake.watch(listener)

    def retry_intake(self, idempotency_key: str) -> None:
        if self._intake is None:
            raise IdAgentError("intake is not configured")
        self._intake.retry(idempotency_key)

    def close(self) -> None:
        if self._intake is not None:
            self._intake.stop()


class _SerialSource:
    def __init__(self, config: Config) -> None:
        from agent.readers.serial_scanner import SerialScanner

        self.name = f"serial:{config.qr.serial_port}"
        self._scanner = SerialScanner(config.qr.serial_port, baud=config.qr.serial_baud,
                                      terminator=config.qr.serial_terminator)

    def payloads(self, stop: threading.Event) -> Iterator[bytes | str]:
        yield from self._scanner.payloads(stop)


class _CameraSource:
    def __init__(self, config: Config) -> None:
        self.name = f"camera:{config.qr.camera}"
        self._spec = config.qr.camera

    def payloads(self, stop: threading.Event) -> Iterator[bytes | str]:
        from agent.qr.decode import decode_frame
        from agent.readers.camera import FrameLoop, open_camera

        source = open_camera(self._spec)
        try:
            for scan in FrameLoop(source, decode_frame).scans(stop):
                yield scan.payload
        finally:
            source.close()


class _EvdevSource:
    def __init__(self, config: Config) -> None:
        from agent.readers.evdev_scanner import EvdevScanner

        self.name = f"evdev:{config.qr.evdev_device}"
        self._scanner = EvdevScanner(config.qr.evdev_device)

    def payloads(self, stop: threading.Event) -> Iterator[bytes | str]:
        for line in self._scanner.lines(stop):
            yield line.text


def make_qr_sources(config: Config) -> list[QrSource]:
    """One source per configured QR input (serial scanner, camera, keyboard-wedge)."""
    sources: list[QrSource] = []
    if config.qr.serial_port:
        sources.append(_SerialSource(config))
    if config.qr.camera:
        sources.append(_CameraSource(config))
    if config.qr.evdev_device:
        sources.append(_EvdevSource(config))
    return sources
