"""The `evaluate:` section of a model's params.yaml (edge.evaluation.evaluate.load_thresholds)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from edge.config import ModelConfig
from edge.evaluation import EvaluationError
from edge.evaluation.evaluate import load_thresholds
from tests.support import ROOT

MODEL = ModelConfig(name="fashion", path="models/fashion", endpoint="fashion", params="params.yaml")


def thresholds(tmp_path, text: str):
    (tmp_path / "params.yaml").write_text(text)
    return load_thresholds(SimpleNamespace(root=tmp_path), MODEL)


def test_the_fashion_params_hold_a_minimum_for_each_of_its_perturbations():
    loaded = load_thresholds(SimpleNamespace(root=ROOT / "models/fashion"), MODEL)
    assert set(loaded.invariance) == {"shift_1px", "shift_2px", "brighter_10pct", "darker_10pct"}
    assert 0 < loaded.min_class_recall < 1 and loaded.images >= 100


def test_defaults_when_the_section_is_missing(tmp_path):
    loaded = thresholds(tmp_path, "train: {epochs: 1}\n")
    assert (loaded.images, loaded.invariance, loaded.min_class_recall) == (1000, {}, 0.0)


@pytest.mark.parametrize(
    "text, words",
    [
        ("evaluate: {min_class_recall: 2}\n", "evaluate.min_class_recall must be a share between 0 and 1, got 2"),
        ("evaluate: {invariance: {shift: high}}\n", "evaluate.invariance.shift must be a share between 0 and 1"),
        ("evaluate: {images: 0}\n", "evaluate.images must be an integer >= 1, got 0"),
        ("evaluate: {threshold: 1}\n", "unknown key(s) ['threshold']"),
        ("evaluate: [1]\n", "`evaluate:` must be a mapping"),
    ],
)
def test_a_bad_section_is_one_line(tmp_path, text, words):
    with pytest.raises(EvaluationError) as caught:
        thresholds(tmp_path, text)
    assert words in str(caught.value)
