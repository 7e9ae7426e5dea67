"""Turns a photo or a drawing into what the model takes: 784 pixel values 0..255, Fashion-MNIST style.

Fashion-MNIST images are 28x28 greyscale, a light garment on a black background, the garment
trimmed and its longer side scaled to 28 pixels, centred. An image already that size is passed
through unchanged (apart from greyscale and polarity), so a dataset image round-trips exactly.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SIDE = 28
FORMATS = ("PNG", "JPEG")
MAX_PIXELS = 40_000_000  # decoded size; a 5 MB PNG can otherwise expand to gigabytes
WORKING_SIDE = 512  # large photos are reduced to this before measuring background and bounds
CONTENT_THRESHOLD = 24  # grey levels above the background that count as garment


class ImageRejected(ValueError):
    """The bytes are not a usable image; the message says why in one line."""


class NotAnImage(ImageRejected):
    """Not a PNG or JPEG, corrupt, or blank."""


class ImageTooLarge(ImageRejected):
    """Decodes to more than MAX_PIXELS pixels."""


def decode(data: bytes) -> Image.Image:
    """The image in `data` (PNG or JPEG), upright (EXIF orientation applied), greyscale.

    Transparent pixels count as white background, as on a web page.
    """
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"image is too large (at most {MAX_PIXELS // 1_000_000} megapixels)") from None
    except (UnidentifiedImageError, OSError):
        raise NotAnImage("not an image: send a PNG or JPEG") from None
    if image.format not in FORMATS:
        raise NotAnImage(f"unsupported image format {image.format}: send a PNG or JPEG")
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(
            f"image of {width}x{height} pixels is too large (at most {MAX_PIXELS // 1_000_000} megapixels)"
        )
    try:
        if image.format == "JPEG":  # decode at a reduced scale: much faster for phone photos
            image.draft("L", (WORKING_SIDE, WORKING_SIDE))
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise NotAnImage(f"corrupt {image.format} image: {exc}") from None
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert("L")


def _border(pixels: np.ndarray) -> np.ndarray:
    return np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])


def to_model_input(image: Image.Image) -> list[int]:
    """784 pixel values 0..255 (row by row) of a greyscale image, in Fashion-MNIST's form.

    Light backgrounds (judged by the image's border) are inverted so the garment is light on black;
    the background level is taken to 0; a larger image is trimmed to the garment and its longer
    side scaled to 28 pixels, centred.
    """
    if max(image.size) > WORKING_SIDE:
        image = image.copy()
        image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(image, dtype=np.float32)
    if np.median(_border(pixels)) > 127:
        pixels = 255.0 - pixels
    background = float(np.median(_border(pixels)))
    if background >= 255 - CONTENT_THRESHOLD or not (pixels > background + CONTENT_THRESHOLD).any():
        raise NotAnImage("the image is blank: nothing to classify")
    pixels = np.clip((pixels - background) * (255.0 / (255.0 - background)), 0, 255)
    if max(pixels.shape) > SIDE:
        rows = np.flatnonzero((pixels > CONTENT_THRESHOLD).any(axis=1))
        cols = np.flatnonzero((pixels > CONTENT_THRESHOLD).any(axis=0))
        pixels = pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    garment = Image.fromarray(pixels.round().astype(np.uint8), mode="L")
    scale = SIDE / max(garment.size)
    if scale != 1:
        size = (max(1, round(garment.width * scale)), max(1, round(garment.height * scale)))
        garment = garment.resize(size, Image.Resampling.LANCZOS)
    frame = Image.new("L", (SIDE, SIDE), 0)
    frame.paste(garment, ((SIDE - garment.width) // 2, (SIDE - garment.height) // 2))
    return np.asarray(frame, dtype=np.uint8).reshape(-1).tolist()


def image_to_pixels(data: bytes) -> list[int]:
    """The model's 784 pixel values for an uploaded PNG or JPEG; raises ImageRejected (400/413)."""
    return to_model_input(decode(data))


def validate_pixels(value: object) -> list[float]:
    """`value` as 784 finite numbers in 0..255, or NotAnImage naming the problem."""
    count = SIDE * SIDE
    if not isinstance(value, list) or len(value) != count:
        got = f"{len(value)} values" if isinstance(value, list) else type(value).__name__
        raise NotAnImage(f'"pixels" must be a list of {count} numbers 0..255 (28x28, row by row), got {got}')
    for index, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 255:
            raise NotAnImage(f'"pixels"[{index}] must be a number 0..255, got {v!r}')
    return value
