"""An evaluation read back from the registry, as the rows `invoke evaluate` prints: the summary, the per-class table,
the confusion matrix as a grid, the behavioural tests, and two versions side by side."""

from __future__ import annotations

from edge.ui import number

# summary metrics: (key, what it is called, higher is better)
SUMMARY = (
    ("accuracy", "accuracy", True),
    ("f1_macro", "F1 (macro)", True),
    ("log_loss", "log loss", False),
    ("auprc_micro", "auPRC (micro, one-vs-rest)", True),
    ("auprc_macro", "auPRC (macro, one-vs-rest)", True),
    ("auroc_micro", "auROC (micro, one-vs-rest)", True),
    ("auroc_macro", "auROC (macro, one-vs-rest)", True),
    ("ece", "expected calibration error (15 bins)", False),
    ("min_class_recall", "lowest recall of a class", True),
)


def view(record: dict) -> dict:
    """A registry evaluation (edge.evaluation.registry) as the fields edge shows, counts as integers."""
    metadata, metrics = record["metadata"], record["metrics"]
    matrix = metrics.get("confusionMatrix", {})
    labels = [spec.get("displayName", spec.get("id", "")) for spec in matrix.get("annotationSpecs", [])]
    classes = [
        {**row, "support": int(row["support"])} if row.get("support") is not None else row
        for row in metadata.get("classes", [])
    ]
    return {
        "evaluation": record["name"],
        "created": record.get("created"),
        "version": str(metadata.get("version", "")),
        "split": metadata.get("split"),
        "instances": int(metadata["instances"]) if metadata.get("instances") is not None else None,
        "heldout": metadata.get("heldout"),
        "summary": metadata.get("summary", {}),
        "classes": classes,
        "labels": labels,
        "confusion": [[int(v) for v in row] for row in matrix.get("rows", [])],
        "calibration": metadata.get("calibration", []),
        "behaviour": metadata.get("behaviour", {"passed": None, "tests": []}),
        "thresholds": metadata.get("thresholds", {}),
        "lineage": _whole_numbers(metadata.get("lineage", {})),
        "evaluated_by": metadata.get("evaluated_by"),
        "evaluated_at": metadata.get("evaluated_at"),
        **{k: v for k, v in metadata.items() if k not in _SHOWN},  # keys others added (a monitoring reference...)
    }


def _whole_numbers(value):
    """`value` with whole floats as integers (a protobuf Struct keeps every number as a float: run 1 comes back 1.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


_SHOWN = {"producer", "model", "version", "split", "instances", "heldout", "summary", "classes", "calibration",
          "behaviour", "thresholds", "lineage", "evaluated_by", "evaluated_at"}  # fmt: skip


def behaviour_verdict(behaviour: dict) -> str:
    tests = behaviour.get("tests", [])
    passed = sum(1 for t in tests if t["passed"])
    if not tests:
        return "no behavioural tests"
    return f"behavioural tests {'passed' if passed == len(tests) else 'FAILED'} ({passed}/{len(tests)})"


def summary_line(model: str, version: str, metadata: dict) -> str:
    """One line: the version's headline metrics and whether its behavioural tests passed."""
    s = metadata.get("summary", {})
    return (
        f"{model} version {version}: accuracy {number(s.get('accuracy'))}, F1 (macro) {number(s.get('f1_macro'))}, "
        f"log loss {number(s.get('log_loss'))}, auPRC {number(s.get('auprc_micro'))} and auROC "
        f"{number(s.get('auroc_micro'))} (micro), ECE {number(s.get('ece'))}; "
        f"{behaviour_verdict(metadata.get('behaviour', {}))}"
    )


def summary_rows(shown: dict) -> list[tuple]:
    return [(title, number(shown["summary"].get(key))) for key, title, _ in SUMMARY if key in shown["summary"]]


def class_rows(shown: dict) -> list[tuple]:
    return [
        (row["class"], number(row["precision"]), number(row["recall"]), number(row["f1"]), row.get("support"))
        for row in shown["classes"]
    ]


def confusion_grid(shown: dict) -> tuple[list[tuple], list[str]]:
    """Rows (actual class) by columns (predicted class id), each row labelled `id name`."""
    labels = shown["labels"]
    headers = ["actual \\ predicted", *[str(i) for i in range(len(labels))]]
    return [(f"{i} {labels[i]}", *row) for i, row in enumerate(shown["confusion"])], headers


def behaviour_rows(shown: dict) -> list[tuple]:
    return [
        (t["name"], number(t["value"], 3), number(t["minimum"], 3), "pass" if t["passed"] else "FAIL")
        for t in shown["behaviour"].get("tests", [])
    ]


def _mark(a, b, higher_is_better: bool) -> str:
    if a is None or b is None or round(a, 4) == round(b, 4):
        return ""
    return "better" if (b > a) == higher_is_better else "worse"


def compare_rows(a: dict, b: dict) -> list[tuple]:
    """(what, version A, version B, B - A, better/worse for B) for the summary, each class's recall and F1, and
    each behavioural test; the held-out data is marked when the two were evaluated on different instances."""
    rows = []
    for key, title, higher in SUMMARY:
        x, y = a["summary"].get(key), b["summary"].get(key)
        rows.append((title, number(x), number(y), _delta(x, y), _mark(x, y, higher)))
    theirs = {row["class"]: row for row in b["classes"]}
    for row in a["classes"]:
        other = theirs.get(row["class"], {})
        for key in ("recall", "f1"):
            x, y = row.get(key), other.get(key)
            rows.append((f"{key}: {row['class']}", number(x), number(y), _delta(x, y), _mark(x, y, True)))
    tests_b = {t["name"]: t for t in b["behaviour"].get("tests", [])}
    for test in a["behaviour"].get("tests", []):
        if test["kind"] != "invariance":
            continue
        x, y = test["value"], tests_b.get(test["name"], {}).get("value")
        rows.append((test["name"], number(x, 3), number(y, 3), _delta(x, y), _mark(x, y, True)))
    rows.append(("behavioural tests", behaviour_verdict(a["behaviour"]), behaviour_verdict(b["behaviour"]), "", ""))
    same = a["heldout"] == b["heldout"]
    rows.append(("held-out data", a["heldout"], b["heldout"], "", "" if same else "different instances"))
    return rows


def _delta(x, y) -> str:
    return "-" if x is None or y is None else f"{y - x:+.4f}"
