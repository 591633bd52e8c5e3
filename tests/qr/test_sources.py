"""QR sources: the serial scanner on a pseudo-terminal (unplug and replug), the camera
frame loop on image files, the keyboard-wedge key decoder."""

from __future__ import annotations

import os
import threading
import time
import tty
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno

from agent.qr.decode import DecodeResult, decode_frame
from agent.qr.payload import read_payload
from agent.readers.camera import Deduper, FrameLoop, FrameSource, ImageFolderCamera
from agent.readers.evdev_scanner import EV_KEY, KEY_ENTER, KEY_LEFTALT, KEY_LEFTSHIFT, US_KEYMAP, decode_events
from agent.readers.serial_scanner import SerialScanner

AN = "001099012345|123456789|Nguyễn Văn An|15031999|Nam|Số 12 Ngõ 34, Hà Nội|20042021".encode()
BINH = "048304004321||Trần Thị Bình|29022004|Nữ|Thôn Đông Xá, Đà Nẵng|05082024".encode()


def _wait(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


class _Pty:
    """A pseudo-terminal whose slave is reachable by a stable symlink, like
    /dev/serial/by-id/… for a real scanner."""

    def __init__(self, link: Path) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.link = link
        os.symlink(os.ttyname(self.slave), link)

    def unplug(self) -> None:
        self.link.unlink()
        os.close(self.master)
        os.close(self.slave)


def test_serial_scanner_raw_bytes_unplug_replug(tmp_path: Path) -> None:
    link = tmp_path / "ttyQR"
    failed_opens: list[float] = []
    from agent.readers import serial_scanner

    def opener(port: str, baud: int, timeout: float):  # type: ignore[no-untyped-def]
        started = time.monotonic()
        try:
            return serial_scanner._open_serial(port, baud, timeout)
        except Exception:
            failed_opens.append(started)
            raise

    device = _Pty(link)
    scanner = SerialScanner(str(link), baud=115200, terminator="CRLF", read_timeout=0.05,
                            backoff=(0.05, 0.2), opener=opener)
    stop = threading.Event()
    got: list[bytes] = []

    def run() -> None:
        for payload in scanner.payloads(stop):
            got.append(payload)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert _wait(lambda: scanner.connected)
        # a payload split across writes, then a second one in the same write
        os.write(device.master, AN[:20])
        time.sleep(0.05)
        os.write(device.master, AN[20:] + b"\r\n" + BINH + b"\r\n")
        assert _wait(lambda: len(got) == 2)
        assert got == [AN, BINH]  # raw bytes, terminator removed

        device.unplug()
        assert _wait(lambda: scanner.reconnects == 1)
        # backoff 0.05 → 0.2 s, not a busy loop: judged by the pause before each new
        # attempt (a lower bound, which a busy machine only lengthens), not by how
        # many attempts fit in some time
        assert _wait(lambda: len(failed_opens) >= 5, timeout=30)
        gaps = [b - a for a, b in zip(failed_opens, failed_opens[1:], strict=False)][:4]
        assert all(gap >= 0.9 * min(0.05 * 2 ** i, 0.2) for i, gap in enumerate(gaps)), gaps

        device = _Pty(link)
        assert _wait(lambda: scanner.connected)
        os.write(device.master, AN + b"\r\n")
        assert _wait(lambda: len(got) == 3)
        assert got[2] == AN
    finally:
        stop.set()
        thread.join(timeout=3)
    assert not thread.is_alive()
    device.unplug()


def test_serial_scanner_cr_terminator_and_stray_lf(tmp_path: Path) -> None:
    device = _Pty(tmp_path / "ttyQR")
    scanner = SerialScanner(str(device.link), terminator="CR", read_timeout=0.05)
    stop = threading.Event()
    got: list[bytes] = []
    thread = threading.Thread(target=lambda: got.extend(scanner.payloads(stop)), daemon=True)
    thread.start()
    try:
        assert _wait(lambda: scanner.connected)
        os.write(device.master, AN + b"\r\n" + BINH + b"\r")  # scanner actually sends CRLF
        assert _wait(lambda: len(got) == 2)
        assert got == [AN, BINH]
    finally:
        stop.set()
        thread.join(timeout=3)
        device.unplug()


def test_serial_scanner_config_errors() -> None:
    from agent.errors import ConfigError

    with pytest.raises(ConfigError):
        SerialScanner("")
    with pytest.raises(ConfigError):
        SerialScanner("/dev/ttyACM0", terminator="TAB")


def _code_image(payload: bytes, scale: int = 4) -> np.ndarray:
    qr = segno.make_qr(payload, error="m", mode="byte")
    matrix = np.array([list(row) for row in qr.matrix], np.uint8)
    img = np.where(np.pad(matrix, 4) == 1, 0, 255).astype(np.uint8)
    img = np.kron(img, np.ones((scale, scale), np.uint8))
    frame = np.full((480, 640), 190, np.uint8)
    frame[40:40 + img.shape[0], 60:60 + img.shape[1]] = img
    return frame


def test_camera_folder_frame_loop_dedupes(tmp_path: Path) -> None:
    blank = np.full((480, 640), 128, np.uint8)
    for name, frame in [("0.png", _code_image(AN)), ("1.png", _code_image(AN)), ("2.png", blank),
                        ("3.png", _code_image(BINH)), ("4.png", _code_image(AN))]:
        cv2.imwrite(str(tmp_path / name), frame)
    now = [0.0]
    loop = FrameLoop(ImageFolderCamera(tmp_path), decode_frame, dedupe_window=10.0, clock=lambda: now[0])
    scans = list(loop.scans())
    assert [s.payload for s in scans] == [AN, BINH]  # the second and last AN are suppressed
    assert loop.frames_decoded == 5
    assert read_payload(scans[1].payload).kind == "cccd"


def test_deduper_window_counts_from_last_sighting() -> None:
    now = [0.0]
    dedupe = Deduper(2.0, clock=lambda: now[0])
    assert dedupe.is_new(b"x")
    now[0] = 1.5
    assert not dedupe.is_new(b"x")  # still in view
    now[0] = 3.0
    assert not dedupe.is_new(b"x")  # 1.5 s since last sighting
    now[0] = 5.5
    assert dedupe.is_new(b"x")


class _FastCamera(FrameSource):
    """A live source producing frames faster than the decoder takes them."""

    live = True
    name = "fast"

    def __init__(self, frames: int) -> None:
        self.left = frames
        self.produced = 0

    def read(self) -> np.ndarray | None:
        if self.left == 0:
            return None
        time.sleep(0.002)
        self.left -= 1
        self.produced += 1
        return np.full((4, 4), self.produced, np.uint8)


def test_live_loop_decodes_latest_and_drops_stale() -> None:
    seen: list[int] = []
    stalled: list[bool] = []
    camera = _FastCamera(100)

    def slow_decoder(frame: np.ndarray) -> DecodeResult:
        # slower than the camera by construction, not by timing: each decode lasts
        # until the camera has produced 5 more frames (or has none left). A loop that
        # stopped grabbing while decoding would keep the camera still: the wait's
        # generous deadline only ends that case, which the counts below then catch
        seen.append(int(frame[0, 0]))
        target = min(int(frame[0, 0]) + 5, 100)
        if not stalled and not _wait(lambda: camera.produced >= target, timeout=10):
            stalled.append(True)  # the camera is not read while decoding: wait no more
        return DecodeResult(None)

    loop = FrameLoop(camera, slow_decoder)
    assert list(loop.scans()) == []
    assert camera.produced == 100
    assert loop.frames_dropped > 50
    assert len(seen) < 40
    assert seen == sorted(seen)  # always newer frames, never a backlog
    assert not stalled


def _type(text: str) -> list[tuple[int, int, int]]:
    """Key events a US-layout wedge scanner sends for ASCII ``text``; other characters
    as Alt + keypad CP1252 codes of their UTF-8 bytes (a scanner's "Alt mode")."""
    reverse: dict[str, tuple[int, bool]] = {}
    for code, (plain, shifted) in US_KEYMAP.items():
        reverse.setdefault(plain, (code, False))
        reverse.setdefault(shifted, (code, True))
    keypad = {"0": 82, "1": 79, "2": 80, "3": 81, "4": 75, "5": 76, "6": 77, "7": 71, "8": 72, "9": 73}
    events: list[tuple[int, int, int]] = []
    for ch in text:
        if ch.isascii():
            code, shift = reverse[ch]
            if shift:
                events.append((EV_KEY, KEY_LEFTSHIFT, 1))
            events += [(EV_KEY, code, 1), (EV_KEY, code, 0)]
            if shift:
                events.append((EV_KEY, KEY_LEFTSHIFT, 0))
        else:
            for byte in ch.encode():
                events.append((EV_KEY, KEY_LEFTALT, 1))
                for digit in f"0{byte:03d}":
                    events += [(EV_KEY, keypad[digit], 1), (EV_KEY, keypad[digit], 0)]
                events.append((EV_KEY, KEY_LEFTALT, 0))
    events += [(EV_KEY, KEY_ENTER, 1), (EV_KEY, KEY_ENTER, 0)]
    return events


def test_wedge_alt_codes_recovered_through_repair() -> None:
    text = AN.decode()
    (line,) = list(decode_events(_type(text)))
    assert line.alt_codes > 0 and line.text != text
    result = read_payload(line.text)
    assert result.kind == "cccd" and result.text == text


def test_wedge_us_layout_ascii_and_lost_keys() -> None:
    events = _type("001099012345|X") [:-2] + [(EV_KEY, 240, 1), (EV_KEY, 240, 0)] + _type("")
    (line,) = list(decode_events(events))
    assert line.text == "001099012345|X" and line.lost == 1


def test_evdev_missing_gives_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from agent.readers.evdev_scanner import EvdevScanner, EvdevUnavailableError

    real_import = builtins.__import__

    def no_evdev(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "evdev":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_evdev)
    with pytest.raises(EvdevUnavailableError) as err:
        next(EvdevScanner("/dev/input/event99").lines(threading.Event()))
    assert "evdev" in err.value.hint
