"""The evaluation page (edge.evaluation.report) built from an evaluation as the registry gives it back; the page
itself is drawn in Chromium by tests/lifecycle/test_gate.py."""

from __future__ import annotations

import json

import numpy as np

from edge.evaluation import metrics
from edge.evaluation.evaluate import Evaluation
from edge.evaluation.report import build_report
from edge.evaluation.show import compare_rows, confusion_grid, view

LABELS = ["cat", "dog", "bird"]


def shown(tests: list[dict], seed: int = 0) -> dict:
    """An evaluation of random probabilities, round-tripped through JSON as the registry's Struct would."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, 300)
    probabilities = rng.dirichlet(np.ones(3), 300)
    evaluation = Evaluation(
        model="toy",
        version="4",
        registry="projects/p/locations/l/models/1",
        split="test",
        metrics=metrics.summarize(labels, probabilities, LABELS),
        behaviour={"passed": True, "tests": tests},
        thresholds={"min_class_recall": 0.1},
        lineage={"labels": {"run": "7"}, "run": 7},
        heldout="abc",
        instances=np.zeros((300, 2)),
    )
    record = {
        "name": "projects/p/locations/l/models/1/evaluations/9",
        "metrics": json.loads(json.dumps(evaluation.metrics["vertex"])),
        "metadata": json.loads(json.dumps(evaluation.metadata(reference_uri="gs://b/reference.json"))),
    }
    return {**view(record), "version": "4"}


INVARIANCE = [{"name": "invariance: flip", "kind": "invariance", "value": 0.8, "minimum": 0.7, "passed": True}]


def test_the_page_has_four_plots_and_the_tables():
    report = build_report("toy", shown(INVARIANCE))
    page = report.html()
    assert report.figures == 4 and report.title == "toy version 4: evaluation"
    assert "expected calibration error (15 bins)" in page and "invariance: flip" in page
    assert "gs://b/reference.json" not in page  # extra metadata is kept, not drawn


def test_a_model_without_perturbations_has_no_invariance_plot():
    assert build_report("toy", shown([])).figures == 3


def test_the_view_reads_counts_as_integers_and_keeps_extra_metadata():
    one = shown(INVARIANCE)
    assert one["instances"] == 300 and isinstance(one["confusion"][0][0], int)
    assert one["lineage"]["run"] == 7 and one["reference_uri"] == "gs://b/reference.json"
    rows, headers = confusion_grid(one)
    assert headers == ["actual \\ predicted", "0", "1", "2"] and rows[2][0] == "2 bird"
    assert sum(sum(row[1:]) for row in rows) == 300


def test_compare_marks_what_is_better_and_worse():
    rows = {row[0]: row for row in compare_rows(shown(INVARIANCE, seed=1), shown(INVARIANCE, seed=2))}
    accuracy, loss = rows["accuracy"], rows["log loss"]
    assert accuracy[4] in ("better", "worse") and loss[4] in ("better", "worse")
    assert (float(accuracy[3]) > 0) == (accuracy[4] == "better")
    assert (float(loss[3]) < 0) == (loss[4] == "better")  # lower log loss is better
    assert rows["held-out data"][4] == ""  # the same digest
