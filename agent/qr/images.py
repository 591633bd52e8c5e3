"""Image files → grey frames for the decoder, with a size guard.

The header is read first (Pillow opens lazily), so a "decompression bomb" is refused
before any pixel is decoded: config ``qr.max_image_pixels``. Large but acceptable
photos are decoded at full size; the pipeline locates on a downscaled copy.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from agent.errors import IdAgentError


class QrImageError(IdAgentError):
    code = "qr_image"
    hint = "Give a PNG or JPEG photo of the card's QR code."
    exit_code = 8
    http_status = 422


def load_image(path: str | os.PathLike[str], *, max_pixels: int = 40_000_000) -> np.ndarray:
    """Read an image file as a grey array; refuse images above ``max_pixels``."""
    name = os.fspath(path)
    try:
        with Image.open(name) as header:
            width, height = header.size
    except FileNotFoundError:
        raise QrImageError(f"no such file: {name}", hint="Check the file name.") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise QrImageError(f"not an image file: {name} ({type(exc).__name__})") from None
    if width * height > max_pixels:
        raise QrImageError(
            f"image too large: {width}x{height} = {width * height} pixels (limit {max_pixels})",
            hint="Crop or downscale the photo around the QR code, or raise qr.max_image_pixels.")
    grey = cv2.imread(name, cv2.IMREAD_GRAYSCALE)
    if grey is None:
        # formats Pillow reads but OpenCV does not (e.g. some TIFF/WebP variants)
        with Image.open(name) as img:
            grey = np.asarray(img.convert("L"))
    return np.ascontiguousarray(grey)
