"""Camera QR source: OpenCV capture (device index, video file or stream URL) or an
image folder standing in for a camera, and the frame loop that decodes them.

The loop decodes at the camera's rate without falling behind: for a live camera a
grabber thread keeps only the newest frame (older ones are dropped and counted), and
the decoder always takes the newest. The same card held in view is reported once:
a payload seen again within ``dedupe_window`` seconds of its last sighting is
suppressed.

This is the only module that opens cv2's capture API (design.md layers). It does not
import ``agent.qr`` (a higher layer): the caller passes the decoder, normally
``agent.qr.decode.decode_frame``.
"""

from __future__ import annotations

import abc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from agent.errors import ReaderError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class CameraError(ReaderError):
    code = "camera"
    hint = "Check that the camera is plugged in and not used by another program (config qr.camera)."
    exit_code = 4


class FrameResult(Protocol):
    """What a decoder returns for one frame (``agent.qr.decode.DecodeResult``)."""

    @property
    def payloads(self) -> tuple[bytes, ...]: ...

    @property
    def stage(self) -> str: ...

    @property
    def elapsed_ms(self) -> float: ...

    @property
    def hint(self) -> str: ...


class FrameSource(abc.ABC):
    """Frames from somewhere. ``live`` sources produce frames whether or not we read
    them (a camera); non-live ones wait for us (a folder, a file)."""

    live: bool = True
    name: str = ""

    @abc.abstractmethod
    def read(self) -> np.ndarray | None:
        """The next frame, or None when the source has ended."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release the device."""


class OpenCvCamera(FrameSource):
    """cv2.VideoCapture on a device index ("0"), a file or a stream URL."""

    def __init__(self, spec: str) -> None:
        target: int | str = int(spec) if spec.isdigit() else spec
        self.name = f"camera {spec}"
        self.live = isinstance(target, int) or "://" in spec
        self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            raise CameraError(f"cannot open camera {spec!r}")

    def read(self) -> np.ndarray | None:
        ok, frame = self._cap.read()
        return frame if ok else None

    def close(self) -> None:
        self._cap.release()


class ImageFolderCamera(FrameSource):
    """Image files of a folder, in name order, as a camera: for tests and demos. With
    ``fps`` the folder behaves live (frames are produced at that rate whether or not
    they are read)."""

    def __init__(self, folder: str | os.PathLike[str], *, fps: float = 0.0, loop: bool = False) -> None:
        self.folder = Path(folder)
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise CameraError(f"no images in {self.folder}", hint="Put PNG or JPEG files in the folder.")
        self.name = f"folder {self.folder.name}"
        self.live = fps > 0
        self.fps = fps
        self.loop = loop
        self._index = 0

    def read(self) -> np.ndarray | None:
        if self._index >= len(self.files):
            if not self.loop:
                return None
            self._index = 0
        path = self.files[self._index]
        self._index += 1
        if self.fps > 0:
            time.sleep(1.0 / self.fps)
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            logger.warning("unreadable image in camera folder: %s", path.name)
            return np.zeros((8, 8, 3), np.uint8)
        return frame


def open_camera(spec: str, *, fps: float = 0.0) -> FrameSource:
    """``spec`` from config ``qr.camera``: a device index, an image folder, or a video
    file / URL."""
    if not spec:
        raise CameraError("no camera configured", hint="Set qr.camera in the config file.")
    if os.path.isdir(spec):
        return ImageFolderCamera(spec, fps=fps)
    return OpenCvCamera(spec)


@dataclass(frozen=True, repr=False)
class Scan:
    """One new code seen by a source."""

    payload: bytes
    source: str
    at: float
    stage: str = ""
    elapsed_ms: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Scan(source={self.source!r}, bytes={len(self.payload)}, stage={self.stage!r})"


class Deduper:
    """Suppress a payload seen again within ``window`` seconds of its last sighting."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._last: dict[bytes, float] = {}

    def is_new(self, payload: bytes) -> bool:
        now = self.clock()
        for key in [k for k, t in self._last.items() if now - t > self.window]:
            del self._last[key]
        new = payload not in self._last
        self._last[payload] = now
        return new


class _LatestFrame:
    """A one-slot mailbox: the grabber overwrites, the decoder takes the newest."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._ended = False
        self.dropped = 0
        self.grabbed = 0

    def put(self, frame: np.ndarray | None) -> None:
        with self._cond:
            if frame is None:
                self._ended = True
            else:
                if self._frame is not None:
                    self.dropped += 1
                self._frame = frame
                self.grabbed += 1
            self._cond.notify_all()

    def take(self, timeout: float) -> tuple[np.ndarray | None, bool]:
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._ended, timeout)
            frame, self._frame = self._frame, None
            return frame, self._ended and frame is None


class FrameLoop:
    """Decode a source's frames; yield each new code once."""

    def __init__(self, source: FrameSource, decoder: Callable[[np.ndarray], FrameResult], *,
                 dedupe_window: float = 3.0, clock: Callable[[], float] = time.monotonic,
                 on_result: Callable[[FrameResult], None] | None = None) -> None:
        self.source = source
        #: called with every frame's result (e.g. to show the clerk a hint)
        self.on_result = on_result
        self.decoder = decoder
        self.deduper = Deduper(dedupe_window, clock)
        self.clock = clock
        self.frames_decoded = 0
        self.frames_dropped = 0
        self.last_result: FrameResult | None = None

    def scans(self, stop: threading.Event | None = None) -> Iterator[Scan]:
        stop = stop or threading.Event()
        frames = self._live_frames(stop) if self.source.live else self._pulled_frames(stop)
        for frame in frames:
            result = self.decoder(frame)
            self.frames_decoded += 1
            self.last_result = result
            if self.on_result is not None:
                self.on_result(result)
            for payload in result.payloads:
                if self.deduper.is_new(payload):
                    yield Scan(payload, self.source.name, self.clock(), result.stage, result.elapsed_ms)

    def _pulled_frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
        while not stop.is_set():
            frame = self.source.read()
            if frame is None:
                return
            yield frame

    def _live_frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
        slot = _LatestFrame()
        halt = threading.Event()

        def grab() -> None:
            try:
                while not (stop.is_set() or halt.is_set()):
                    frame = self.source.read()
                    slot.put(frame)
                    if frame is None:
                        return
            except cv2.error as exc:
                logger.warning("camera read failed: %s", exc)
                slot.put(None)

        thread = threading.Thread(target=grab, name="camera-grab", daemon=True)
        thread.start()
        try:
            while not stop.is_set():
                frame, ended = slot.take(timeout=0.5)
                self.frames_dropped = slot.dropped
                if ended:
                    return
                if frame is not None:
                    yield frame
        finally:
            halt.set()
            thread.join(timeout=2.0)
            self.frames_dropped = slot.dropped
