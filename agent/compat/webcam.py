"""The kits' webcam stream: a Socket.IO server of its own (``[compat] camera_port``,
default 9000) that emits ``/image {"data": base64 JPEG}`` at ``image_rate`` frames a
second, only while at least one client is connected. The camera is opened when the
first client connects and released when the last one leaves (the desk's webcam is
not held, nor its light on, when nobody looks).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import Callable
from typing import Any

import socketio

from agent.config import CompatSection
from agent.errors import IdAgentError

logger = logging.getLogger(__name__)

#: JPEG quality of the frames sent (the kits' frames are previews, not evidence)
JPEG_QUALITY = 80
#: seconds before a camera that failed is opened again
REOPEN_DELAY = 2.0


def open_webcam(spec: str) -> Any:
    """A device index, a video file or URL, or an image folder (looped: tests, demos)."""
    from agent.readers.camera import ImageFolderCamera, open_camera

    if os.path.isdir(spec):
        return ImageFolderCamera(spec, loop=True)
    return open_camera(spec)


def encode_jpeg(frame: Any) -> bytes:
    import cv2

    ok, buffer = cv2.imencode(".jpg", frame, [int(cv2.IMWRITE_JPEG_QUALITY), JPEG_QUALITY])
    if not ok:
        raise IdAgentError("a webcam frame could not be encoded as JPEG")
    return bytes(buffer)


class CameraStream:
    def __init__(self, config: CompatSection, origins: Callable[[str | None], bool], *, max_clients: int,
                 opener: Callable[[str], Any] = open_webcam) -> None:
        self.spec = config.camera
        self.period = 1.0 / config.image_rate
        self.sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins=origins, logger=False,
                                        engineio_logger=False)
        self._opener = opener
        self._max_clients = max_clients
        self._clients: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.frames_sent = 0
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)

    async def _on_connect(self, sid: str, _environ: dict[str, Any], _auth: Any = None) -> bool:
        if len(self._clients) >= self._max_clients:
            return False
        self._clients.add(sid)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._stream())
        return True

    async def _on_disconnect(self, sid: str, *_reason: Any) -> None:
        self._clients.discard(sid)

    async def _stream(self) -> None:
        """Frames while someone watches; the camera is released when nobody does."""
        loop = asyncio.get_running_loop()
        while self._clients:
            try:
                source = await loop.run_in_executor(None, self._opener, self.spec)
            except IdAgentError as err:
                logger.warning("webcam %s: %s", self.spec, err.message)
                await asyncio.sleep(REOPEN_DELAY)
                continue
            try:
                await self._frames(source, loop)
            finally:
                await loop.run_in_executor(None, source.close)

    async def _frames(self, source: Any, loop: asyncio.AbstractEventLoop) -> None:
        while self._clients:
            started = loop.time()
            frame = await loop.run_in_executor(None, source.read)
            if frame is None:
                logger.warning("webcam %s: no frame (device gone or file ended)", self.spec)
                await asyncio.sleep(REOPEN_DELAY)
                return
            jpeg = await loop.run_in_executor(None, encode_jpeg, frame)
            await self.sio.emit("/image", {"data": base64.b64encode(jpeg).decode("ascii")})
            self.frames_sent += 1
            await asyncio.sleep(max(0.0, self.period - (loop.time() - started)))

    async def close(self) -> None:
        self._clients.clear()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
