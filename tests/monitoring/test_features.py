"""The monitored features: the fashion model's `features` hook (models/fashion/hooks.py) on real Fashion-MNIST
test images, edge's own valid_input, and the reference of a version stored beside its artifact."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from edge.config import ModelConfig
from edge.models import ModelSpecError, load_spec
from edge.monitoring.features import VALID_INPUT, compute_features, monitored_features
from edge.monitoring.reference import (
    ReferenceError,
    compute_reference,
    load_reference,
    reference_uri_for,
    store_reference,
)
from tests.support import ROOT

DATASET = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
FASHION = ModelConfig("fashion", "models/fashion", "fashion", "models/fashion/params.yaml")


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT, FASHION)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """200 Fashion-MNIST test images as 784 pixel values each (Debian's dataset-fashion-mnist)."""
    if not DATASET.exists():
        pytest.fail(f"{DATASET} is missing: ./edge.sh installs Debian's dataset-fashion-mnist")
    with gzip.open(DATASET) as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=16)[: 200 * 784].reshape(200, 784).astype(np.int64)


def answers(count: int, top: int = 3, confidence: float = 0.91) -> list[dict]:
    """Predictions as the endpoint answers them: class `top` with `confidence`, the rest spread evenly."""
    rest = (1 - confidence) / 9
    return [{"class_id": top, "probabilities": [confidence if c == top else rest for c in range(10)]}] * count


def test_the_fashion_model_declares_its_features_and_edge_adds_valid_input(spec):
    kinds = monitored_features(spec)
    assert kinds["predicted_class"] == kinds[VALID_INPUT] == "categorical"
    assert {k for k, v in kinds.items() if v == "numeric"} == {
        "confidence",
        "margin",
        "mean_intensity",
        "ink_fraction",
        "border_intensity",
        "contrast",
    }


def test_features_are_computed_per_instance_from_pixels_and_answers(spec, images):
    table = compute_features(spec, images.tolist(), answers(len(images)))
    assert all(len(table.values[name]) == 200 for name in table.kinds)
    assert set(table.values["predicted_class"]) == {"3 Dress"}, "the class with its label from model.yaml"
    assert table.values["confidence"][0] == pytest.approx(0.91)
    assert table.values["margin"][0] == pytest.approx(0.91 - 0.01)
    assert table.values["mean_intensity"][0] == pytest.approx(images[0].mean())
    assert table.values["ink_fraction"][0] == pytest.approx((images[0] > 32).mean())
    assert max(table.values["border_intensity"]) < 60, "Fashion-MNIST's background is black"
    inverted = compute_features(spec, (255 - images).tolist(), answers(len(images)))
    assert min(inverted.values["border_intensity"]) > 195


def test_invalid_instances_are_counted_and_never_reach_the_hook(spec, images):
    instances = [images[0].tolist(), [1, 2, 3], [300] * 784, images[1].tolist(), "text", [True] * 784]
    table = compute_features(spec, instances, answers(len(instances)))
    assert table.values[VALID_INPUT] == ["valid", "invalid", "invalid", "valid", "invalid", "invalid"]
    assert len(table.values["mean_intensity"]) == 2


def test_a_model_without_features_says_what_monitoring_needs(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "hooks.py").write_text("def validate_instance(instance):\n    return None\n")
    spec = load_spec(tmp_path, ModelConfig("m", "m", "m", "m/params.yaml"))
    with pytest.raises(ModelSpecError, match=r"hooks.py has no FEATURES: monitoring needs the model's features"):
        monitored_features(spec)


def test_a_reference_describes_every_feature_of_held_out_data(spec, images):
    reference = compute_reference(spec, images.astype(np.float32), answers(len(images)))
    assert reference["instances"] == 200 and reference["model"] == "fashion"
    assert reference["features"]["predicted_class"] == {"kind": "categorical", "shares": {"3 Dress": 1.0}}
    assert reference["features"][VALID_INPUT]["shares"] == {"valid": 1.0}
    numeric = reference["features"]["mean_intensity"]
    assert numeric["kind"] == "numeric" and len(numeric["shares"]) == len(numeric["edges"]) + 1
    assert sum(numeric["shares"]) == pytest.approx(1) and numeric["summary"]["min"] <= numeric["summary"]["max"]


def test_the_reference_is_stored_beside_the_versions_artifact(spec, images, target, bucket):
    artifact = f"gs://{bucket.name}/runs/fashion/20260101-000000-7/model"
    uri = store_reference(target.storage_client(), spec, artifact, images, answers(len(images)))
    assert (
        uri
        == reference_uri_for(artifact)
        == f"gs://{bucket.name}/runs/fashion/20260101-000000-7/monitoring/reference.json"
    )
    stored = load_reference(target.storage_client(), uri)
    assert stored == json.loads(
        json.dumps(compute_reference(spec, images, answers(len(images))) | {"created": stored["created"]})
    )


def test_a_missing_reference_is_one_line(target, bucket):
    with pytest.raises(ReferenceError, match=rf"^no reference at gs://{bucket.name}/nowhere/reference.json$"):
        load_reference(target.storage_client(), f"gs://{bucket.name}/nowhere/reference.json")
