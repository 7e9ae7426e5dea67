"""A person's view: `invoke web.serve`, the page in headless Chromium (Debian's), an upload and a drawing."""

from __future__ import annotations

import pytest

from tests.support import fashion_labels, keep_screenshot
from tests.web.conftest import png_bytes, web_serve

LABELS = fashion_labels()

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def site(deployed_repo):
    """The base URL of `invoke web.serve` in the user repository whose model is deployed."""
    with web_serve(deployed_repo) as url:
        yield url


@pytest.fixture
def page(browser, site):
    page = browser.new_page(viewport={"width": 1000, "height": 640})
    page.set_default_timeout(60_000)
    page.goto(site)
    yield page
    page.close()


def test_uploading_a_test_image_shows_its_class_probabilities_and_the_version(
    page, test_images, raw_predictions, tmp_path
):
    pixels, labels = test_images
    index = next((i for i, raw in enumerate(raw_predictions) if raw["class_id"] == labels[i]), None)
    assert index is not None, f"the model got none of the first three test images right: {raw_predictions}"
    upload = tmp_path / f"test-image-{index}.png"
    upload.write_bytes(png_bytes(pixels[index]))
    page.set_input_files("#file", str(upload))
    page.wait_for_selector("#result:not([hidden])")
    assert page.inner_text("#class-name") == LABELS[labels[index]]
    assert page.inner_text("#model-version").strip()
    assert page.locator("#bars li").count() == 10
    assert page.locator("#bars li.top").inner_text().startswith(LABELS[labels[index]])
    keep_screenshot(page, tmp_path, "fashion-web.png")


def test_a_drawing_on_the_canvas_gets_a_class(page):
    page.click("#tab-draw")
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 100, box["y"] + 40)
    page.mouse.down()
    for x, y in ((100, 250), (180, 250), (180, 40)):  # a trouser-like outline
        page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
    page.mouse.up()
    page.click("#classify-drawing")
    page.wait_for_selector("#result:not([hidden])")
    assert page.inner_text("#class-name") in LABELS
