"""Behavioural tests (edge.evaluation.behaviour) with a stand-in model and perturbations."""

from __future__ import annotations

import numpy as np
import pytest

from edge.evaluation import EvaluationError
from edge.evaluation.behaviour import Thresholds, failures, run_tests


def predict(batch: np.ndarray) -> np.ndarray:
    """A 'model' that answers 1 when the mean value is above 0.5."""
    return (batch.mean(axis=1) > 0.5).astype(int)


def perturb(batch: np.ndarray, rng) -> dict[str, np.ndarray]:
    return {"same": batch.copy(), "inverted": 1 - batch}


INSTANCES = np.random.default_rng(0).random((200, 8))
THRESHOLDS = Thresholds(images=100, seed=1, invariance={"same": 0.99, "inverted": 0.5}, min_class_recall=0.6)


def test_invariance_pass_rates_and_recalls_against_their_minimums():
    result = run_tests(predict, INSTANCES, predict(INSTANCES), {"a": 0.9, "b": 0.55}, perturb, THRESHOLDS)
    by_name = {t["name"]: t for t in result["tests"]}
    assert result["images"] == 100
    assert by_name["invariance: same"]["value"] == 1.0 and by_name["invariance: same"]["passed"]
    assert by_name["invariance: inverted"]["value"] < 0.1 and not by_name["invariance: inverted"]["passed"]
    assert by_name["recall: a"]["passed"] and not by_name["recall: b"]["passed"]
    assert not result["passed"]
    assert [t["name"] for t in failures(result)] == ["invariance: inverted", "recall: b"]


def test_the_sample_is_seeded():
    seen = []

    def remember(batch, rng):
        seen.append(batch.copy())
        return {}

    for _ in range(2):
        run_tests(predict, INSTANCES, predict(INSTANCES), {}, remember, THRESHOLDS)
    assert np.array_equal(seen[0], seen[1])


def test_a_perturbation_without_a_minimum_is_a_one_line_error():
    thresholds = Thresholds(images=10, seed=0, invariance={"same": 0.9}, min_class_recall=0.0)
    with pytest.raises(EvaluationError, match=r"no minimum for the perturbation\(s\) \['inverted'\]"):
        run_tests(predict, INSTANCES, predict(INSTANCES), {}, perturb, thresholds)
