"""A person's view: `invoke web.serve`, the page in headless Chromium (Debian's), an upload and a drawing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support import ROOT, fashion_labels
from tests.web.conftest import png_bytes, web_serve

LABELS = fashion_labels()

pytestmark = pytest.mark.timeout(900)
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOT = ROOT / "docs" / "fashion-web.png"


@pytest.fixture(scope="module")
def site(deployed_repo):
    """The base URL of `invoke web.serve` in the user repository whose model is deployed."""
    with web_serve(deployed_repo) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from Debian's `chromium` package, driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: ./edge.sh installs Debian's chromium (or apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


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
    page.screenshot(path=str(tmp_path / "fashion-web.png"), full_page=True)
    if os.environ.get("EDGE_UPDATE_SCREENSHOT"):  # the README's picture; tests leave the tree as it was
        shutil.copyfile(tmp_path / "fashion-web.png", SCREENSHOT)


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
