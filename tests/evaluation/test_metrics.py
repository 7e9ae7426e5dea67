"""Classification metrics (edge.evaluation.metrics) against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.evaluation import metrics
from edge.evaluation.evaluate import finite

# Two classes, four instances; class 1's scores are the textbook example (auROC 0.75, average precision 0.8333).
LABELS = np.array([0, 0, 1, 1])
PROBABILITIES = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])


@pytest.fixture(scope="module")
def summary():
    return metrics.summarize(LABELS, PROBABILITIES, ["cat", "dog"])


def test_accuracy_confusion_matrix_and_per_class_rows(summary):
    assert summary["summary"]["accuracy"] == 0.75
    assert summary["confusion"] == [[2, 0], [1, 1]]  # rows: actual; columns: predicted
    cat, dog = summary["classes"]
    assert (cat["class"], cat["precision"], cat["recall"]) == ("cat", pytest.approx(2 / 3), 1.0)
    assert (dog["precision"], dog["recall"], dog["f1"], dog["support"]) == (1.0, 0.5, pytest.approx(2 / 3), 2)
    assert summary["summary"]["min_class_recall"] == 0.5
    assert summary["summary"]["f1_macro"] == pytest.approx((0.8 + 2 / 3) / 2)


def test_one_vs_rest_areas_per_class_and_averaged(summary):
    cat, dog = summary["classes"]
    assert dog["auroc"] == pytest.approx(0.75) and dog["auprc"] == pytest.approx(0.8333, abs=1e-4)
    assert cat["auroc"] == pytest.approx(0.75)  # two classes: the same ranking, mirrored
    assert summary["summary"]["auroc_macro"] == pytest.approx(0.75)
    pooled_truth = np.array([1, 0, 1, 0, 0, 1, 0, 1])  # micro: every (instance, class) pair is one instance
    assert summary["summary"]["auroc_micro"] == pytest.approx(metrics.roc_auc(pooled_truth, PROBABILITIES.ravel()))


def test_log_loss_and_expected_calibration_error(summary):
    expected = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    assert summary["summary"]["log_loss"] == pytest.approx(expected)
    # confidences 0.9, 0.6, 0.65, 0.8 fall in four different bins of 15; only 0.65 is wrong
    assert summary["summary"]["ece"] == pytest.approx((0.1 + 0.4 + 0.65 + 0.2) / 4)
    filled = [b for b in summary["calibration"] if b["count"]]
    assert len(summary["calibration"]) == 15 and [b["count"] for b in filled] == [1, 1, 1, 1]


def test_perfect_scores_give_perfect_metrics():
    labels = np.array([0, 1, 2, 2])
    result = metrics.summarize(labels, np.eye(3)[labels], [])
    assert result["summary"]["accuracy"] == 1.0 and result["summary"]["auprc_micro"] == 1.0
    assert result["summary"]["auroc_macro"] == 1.0 and result["summary"]["ece"] == 0.0
    assert result["labels"] == ["0", "1", "2"]  # no names in model.yaml: class ids


def test_vertex_metrics_follow_the_classification_schema(summary):
    vertex = summary["vertex"]
    assert set(vertex) == {"auPrc", "auRoc", "logLoss", "confidenceMetrics", "confusionMatrix"}
    assert vertex["auRoc"] == summary["summary"]["auroc_micro"]  # Vertex's are micro-averaged
    specs = vertex["confusionMatrix"]["annotationSpecs"]
    assert specs == [{"id": "0", "displayName": "cat"}, {"id": "1", "displayName": "dog"}]
    thresholds = [m["confidenceThreshold"] for m in vertex["confidenceMetrics"]]
    assert thresholds[:3] == [0.0, 0.05, 0.1] and thresholds[-5:] == [0.95, 0.96, 0.97, 0.98, 0.99]
    half = next(m for m in vertex["confidenceMetrics"] if m["confidenceThreshold"] == 0.5)
    # scores >= 0.5: 0.9 (cat, right), 0.6 (cat, right), 0.65 (cat, wrong), 0.8 (dog, right)
    assert (half["precision"], half["recall"], half["falsePositiveRate"]) == (0.75, 0.75, 0.25)
    assert (half["truePositiveCount"], half["falsePositiveCount"]) == ("3", "1")
    assert half["precisionAt1"] == 0.75


def test_a_slice_per_class_in_the_same_schema(summary):
    dog = summary["slices"][1]
    assert dog["auRoc"] == pytest.approx(0.75) and len(dog["confidenceMetrics"]) == 24
    at_half = next(m for m in dog["confidenceMetrics"] if m["confidenceThreshold"] == 0.5)
    assert (at_half["precision"], at_half["recall"]) == (1.0, 0.5)


def test_a_class_absent_from_the_split_has_no_area_rather_than_nan():
    result = finite(metrics.summarize(np.array([0, 0]), np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]]), []))
    assert result["classes"][2]["auroc"] is None and result["slices"][2]["auPrc"] is None
    assert result["summary"]["accuracy"] == 1.0
