"""The API against the fashion model deployed on the twin: images and pixels in, classes out; errors as JSON."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from fashion_web.app import MAX_BODY_BYTES, create_app
from tests.support import ROOT, fashion_labels
from tests.web.conftest import png_bytes

LABELS = fashion_labels()

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def client(deployed_repo):
    """The app of the user repository whose model is deployed, in this process."""
    with TestClient(create_app(deployed_repo)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def undeployed_client(undeployed_repo):
    """The app of a project that ran `invoke init` and nothing else."""
    with TestClient(create_app(undeployed_repo)) as test_client:
        yield test_client


def test_healthz_answers_without_opening_the_project(tmp_path):
    with TestClient(create_app(tmp_path)) as empty:  # no edge.yaml there: only /api/classify would notice
        assert empty.get("/healthz").json() == {"status": "ok"}


def test_the_page_offers_upload_and_drawing_with_no_outside_resources():
    with TestClient(create_app(ROOT)) as app:  # the page is served without reaching the target
        page = app.get("/")
        script = app.get("/static/app.js")
    assert page.status_code == 200 and 'type="file"' in page.text and "<canvas" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert "Ankle boot" in page.text  # the class names the bar chart uses, from models/fashion/model.yaml
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert script.status_code == 200 and "/api/classify" in script.text


def test_a_png_of_a_test_image_classifies_like_its_raw_pixels(client, test_images, raw_predictions):
    pixels, labels = test_images
    for image, raw in zip(pixels[:3], raw_predictions, strict=False):
        response = client.post("/api/classify", files={"image": ("garment.png", png_bytes(image), "image/png")})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["class_id"] == raw["class_id"]
        assert answer["class_name"] == LABELS[raw["class_id"]]
        assert len(answer["probabilities"]) == 10 and answer["probability"] == max(answer["probabilities"])
        assert answer["model_version"]
    assert any(raw["class_id"] == label for raw, label in zip(raw_predictions, labels[:3], strict=False))


def test_json_pixels_and_a_raw_png_body_answer_like_an_upload(client, test_images, raw_predictions):
    image = test_images[0][0]
    by_json = client.post("/api/classify", json={"pixels": image.tolist()}).json()
    by_body = client.post("/api/classify", content=png_bytes(image), headers={"Content-Type": "image/png"}).json()
    assert by_json["class_id"] == by_body["class_id"] == raw_predictions[0]["class_id"]
    assert set(by_json) == {"class_id", "class_name", "probability", "probabilities", "model_version"}


def test_text_sent_as_an_image_is_a_400(client):
    response = client.post("/api/classify", files={"image": ("notes.png", b"not a picture", "image/png")})
    assert response.status_code == 400
    assert "not an image" in response.json()["error"]


def test_a_corrupt_png_is_a_400(client, test_images):
    data = png_bytes(test_images[0][0])
    response = client.post("/api/classify", files={"image": ("cut.png", data[: len(data) // 2], "image/png")})
    assert response.status_code == 400 and response.json()["error"]


def test_pixels_that_are_not_784_numbers_are_a_400(client):
    response = client.post("/api/classify", json={"pixels": [0] * 10})
    assert response.status_code == 400 and "784" in response.json()["error"]


def test_an_upload_over_5_mb_is_a_413(client):
    response = client.post("/api/classify", files={"image": ("huge.png", b"\0" * (MAX_BODY_BYTES + 1), "image/png")})
    assert response.status_code == 413 and "5 MB" in response.json()["error"]


def test_an_undeployed_model_is_a_503_that_says_to_run_invoke_deploy(undeployed_client, test_images):
    response = undeployed_client.post("/api/classify", json={"pixels": test_images[0][0].tolist()})
    assert response.status_code == 503
    assert "invoke deploy" in response.json()["error"]
