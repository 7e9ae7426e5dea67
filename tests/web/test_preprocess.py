"""Images -> the model's 784 pixels: real Fashion-MNIST test images through PNG and JPEG, and what is refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fashion_web.preprocess import ImageTooLarge, NotAnImage, image_to_pixels, validate_pixels
from tests.web.conftest import png_bytes


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def shifted_error(result: np.ndarray, original: np.ndarray) -> float:
    """Mean absolute difference after the best shift of at most one pixel (centring may round differently)."""
    padded = np.pad(original.astype(float), 1)
    return min(
        np.abs(result - padded[1 + dy : 29 + dy, 1 + dx : 29 + dx]).mean() for dy in (-1, 0, 1) for dx in (-1, 0, 1)
    )


def test_a_test_image_written_to_png_reads_back_as_its_784_pixels(test_images):
    pixels, _ = test_images
    for original in pixels[:3]:
        assert np.array_equal(np.array(image_to_pixels(png_bytes(original))), original)


def test_a_large_dark_on_light_photo_becomes_the_light_on_black_28x28_image(test_images):
    """A "photo": the test image inverted (dark garment on white), 10x larger, off-centre on a wide page, as JPEG."""
    original = test_images[0][1].reshape(28, 28)
    garment = Image.fromarray(255 - original, mode="L").resize((280, 280), Image.Resampling.NEAREST)
    page = Image.new("RGB", (500, 360), (255, 255, 255))
    page.paste(garment.convert("RGB"), (30, 50))
    result = np.array(image_to_pixels(encoded(page, "JPEG", quality=92)), dtype=float).reshape(28, 28)
    assert shifted_error(result, original) < 10


def test_a_transparent_png_counts_its_transparency_as_background(test_images):
    original = test_images[0][2].reshape(28, 28)
    alpha = Image.fromarray(original, mode="L")  # the garment opaque, the background transparent
    rgba = Image.merge("RGBA", [Image.new("L", (28, 28), 0)] * 3 + [alpha])  # black ink, opaque where the garment is
    result = np.array(image_to_pixels(encoded(rgba, "PNG")), dtype=float).reshape(28, 28)
    assert np.abs(result - original).max() <= 1


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"just some text", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not an image"),
        (encoded(Image.new("L", (40, 40), 255), "PNG"), "blank"),
        (encoded(Image.new("L", (40, 40), 0), "GIF"), "unsupported image format GIF"),
    ],
)
def test_unusable_bytes_are_refused_with_the_reason(data, problem):
    with pytest.raises(NotAnImage, match=problem):
        image_to_pixels(data)


def test_a_truncated_png_is_refused_as_corrupt(test_images):
    data = png_bytes(test_images[0][0])
    with pytest.raises(NotAnImage):
        image_to_pixels(data[: len(data) // 2])


def test_an_image_that_decodes_too_large_is_refused():
    with pytest.raises(ImageTooLarge):
        image_to_pixels(encoded(Image.new("1", (8000, 8000), 0), "PNG"))  # ~8 KB on disk, 64 megapixels


@pytest.mark.parametrize(
    "pixels", [[0] * 783, [0] * 783 + [256], [0] * 783 + [float("nan")], [True] * 784, "pixels", [0] * 783 + ["1"]]
)
def test_json_pixels_must_be_784_numbers_0_to_255(pixels):
    with pytest.raises(NotAnImage, match='"pixels"'):
        validate_pixels(pixels)
