"""Classification metrics from labels and predicted probabilities (numpy only), in edge's names and in the shape of
Vertex's classification metrics schema (`classification_metrics_1.0.0.yaml`).

Definitions (K classes, N instances, `p` the [N, K] probabilities, prediction = argmax):
- accuracy: share of instances whose prediction is their label.
- precision / recall / F1 per class: from the confusion matrix (rows: actual, columns: predicted); 0 where undefined.
- log loss: mean of -ln p[label], probabilities clipped to [1e-15, 1].
- auPRC, auROC one-vs-rest: per class, the positive class against the rest scored by p[:, class]; auPRC is the
  average precision (sum over thresholds of the recall step times the precision), auROC the trapezoid under the
  ROC curve, both over the distinct scores (ties grouped). "macro" is the unweighted mean over classes; "micro"
  pools every (instance, class) pair into one binary problem, as Vertex's `auPrc` and `auRoc` are.
- expected calibration error: the confidence (max probability) in 15 equal bins of (0, 1]; the mean over bins of
  |accuracy - mean confidence|, weighted by the bin's share of instances.
- confidenceMetrics (Vertex): per threshold of Vertex's list, micro precision / recall / F1 / false positive rate
  over all (instance, class) pairs scored at or above it, and the same for the top class only (`...At1`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

CALIBRATION_BINS = 15
# Vertex's thresholds for confidenceMetrics: 0.00, 0.05, ..., 0.95, then 0.96 ... 0.99
VERTEX_THRESHOLDS = tuple(round(i * 0.05, 2) for i in range(20)) + (0.96, 0.97, 0.98, 0.99)
EPSILON = 1e-15


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """[K, K] counts: row = actual class, column = predicted class."""
    import numpy as np

    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def _divide(top, bottom):
    import numpy as np

    top, bottom = np.asarray(top, dtype=np.float64), np.asarray(bottom, dtype=np.float64)
    return np.divide(top, bottom, out=np.zeros_like(top), where=bottom > 0)


def per_class(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of each class from a confusion matrix."""
    import numpy as np

    hits = np.diag(matrix)
    precision = _divide(hits, matrix.sum(axis=0))
    recall = _divide(hits, matrix.sum(axis=1))
    return {
        "precision": precision,
        "recall": recall,
        "f1": _divide(2 * precision * recall, precision + recall),
        "support": matrix.sum(axis=1),
    }


def _curve(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true positives, false positives, thresholds) at each distinct score, highest score first."""
    import numpy as np

    order = np.argsort(-scores, kind="mergesort")
    scores, truth = scores[order], truth[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # the last index of each distinct score
    tps = np.cumsum(truth)[last]
    return tps, 1 + last - tps, scores[last]


def average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision; NaN without positives."""
    import numpy as np

    tps, fps, _ = _curve(truth, scores)
    if tps[-1] == 0:
        return float("nan")
    precision, recall = tps / (tps + fps), tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids); NaN without both positives and negatives."""
    import numpy as np

    tps, fps, _ = _curve(truth, scores)
    if tps[-1] == 0 or fps[-1] == 0:
        return float("nan")
    tpr, fpr = np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    import numpy as np

    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, EPSILON, 1.0))))


def calibration(labels: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """Expected calibration error and the reliability diagram's bins (count, mean confidence, accuracy)."""
    import numpy as np

    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)  # bin b holds (b/bins, (b+1)/bins]
    rows, ece = [], 0.0
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        mean_confidence = float(confidence[members].mean()) if count else None
        accuracy = float(correct[members].mean()) if count else None
        if count:
            ece += count / len(labels) * abs(accuracy - mean_confidence)
        rows.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "count": count,
                "confidence": mean_confidence,
                "accuracy": accuracy,
            }
        )
    return {"ece": float(ece), "bins": rows}


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    import numpy as np

    truth = np.zeros((len(labels), classes), dtype=np.int64)
    truth[np.arange(len(labels)), labels] = 1
    return truth


def confidence_metrics(truth: np.ndarray, probabilities: np.ndarray) -> list[dict]:
    """Vertex's `confidenceMetrics` for [N, K] one-hot truth (K = 1 for one class of a slice) and scores."""
    import numpy as np

    top = probabilities.argmax(axis=1)
    top_score = probabilities[np.arange(len(top)), top]
    top_true = truth[np.arange(len(top)), top] == 1
    positives = int(truth.sum())
    entries = []
    for threshold in VERTEX_THRESHOLDS:
        chosen = probabilities >= threshold
        tp = int((chosen & (truth == 1)).sum())
        fp = int((chosen & (truth == 0)).sum())
        fn, tn = positives - tp, int(truth.size - positives) - fp
        top_chosen = top_score >= threshold
        tp1, fp1 = int((top_chosen & top_true).sum()), int((top_chosen & ~top_true).sum())
        precision, recall = float(_divide(tp, tp + fp)), float(_divide(tp, positives))
        precision1, recall1 = float(_divide(tp1, tp1 + fp1)), float(_divide(tp1, positives))
        entries.append(
            {
                "confidenceThreshold": threshold,
                "precision": precision,
                "recall": recall,
                "f1Score": float(_divide(2 * precision * recall, precision + recall)),
                "falsePositiveRate": float(_divide(fp, fp + tn)),
                "precisionAt1": precision1,
                "recallAt1": recall1,
                "f1ScoreAt1": float(_divide(2 * precision1 * recall1, precision1 + recall1)),
                "truePositiveCount": str(tp),
                "falsePositiveCount": str(fp),
                "falseNegativeCount": str(fn),
                "trueNegativeCount": str(tn),
            }
        )
    return entries


def _mean_known(values: list[float]) -> float:
    """The mean of the values that are not NaN (a class absent from the split has no area); NaN if none is."""
    known = [v for v in values if v == v]
    return sum(known) / len(known) if known else float("nan")


def summarize(labels: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> dict:
    """Every metric edge reports for a classifier: summary numbers, per-class rows, the confusion matrix,
    the calibration bins, and Vertex's schema fields (overall, and per class for the slices)."""
    import numpy as np

    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    classes = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predicted, classes)
    rows = per_class(matrix)
    truth = one_hot(labels, classes)
    auprc = [average_precision(truth[:, k], probabilities[:, k]) for k in range(classes)]
    auroc = [roc_auc(truth[:, k], probabilities[:, k]) for k in range(classes)]
    calibrated = calibration(labels, probabilities)
    summary = {
        "accuracy": float(np.mean(predicted == labels)),
        "f1_macro": float(rows["f1"].mean()),
        "log_loss": log_loss(labels, probabilities),
        "auprc_micro": average_precision(truth.ravel(), probabilities.ravel()),
        "auprc_macro": _mean_known(auprc),
        "auroc_micro": roc_auc(truth.ravel(), probabilities.ravel()),
        "auroc_macro": _mean_known(auroc),
        "ece": calibrated["ece"],
        "min_class_recall": float(rows["recall"].min()),
    }
    names = [class_names[k] if k < len(class_names) else str(k) for k in range(classes)]
    per_class_rows = [
        {
            "class": names[k],
            "precision": float(rows["precision"][k]),
            "recall": float(rows["recall"][k]),
            "f1": float(rows["f1"][k]),
            "support": int(rows["support"][k]),
            "auprc": auprc[k],
            "auroc": auroc[k],
        }
        for k in range(classes)
    ]
    return {
        "summary": summary,
        "classes": per_class_rows,
        "confusion": matrix.tolist(),
        "labels": names,
        "calibration": calibrated["bins"],
        "vertex": vertex_metrics(labels, probabilities, matrix, names, summary),
        "slices": [vertex_slice(truth[:, k], probabilities[:, k], auprc[k], auroc[k]) for k in range(classes)],
    }


def vertex_metrics(labels, probabilities, matrix, names: list[str], summary: dict) -> dict:
    """The evaluation's metrics in Vertex's classification schema (auPrc and auRoc micro-averaged, as Vertex's)."""
    return {
        "auPrc": summary["auprc_micro"],
        "auRoc": summary["auroc_micro"],
        "logLoss": summary["log_loss"],
        "confidenceMetrics": confidence_metrics(one_hot(labels, len(names)), probabilities),
        "confusionMatrix": {
            "annotationSpecs": [{"id": str(k), "displayName": name} for k, name in enumerate(names)],
            "rows": matrix.tolist(),
        },
    }


def vertex_slice(truth: np.ndarray, scores: np.ndarray, auprc: float, auroc: float) -> dict:
    """One class against the rest in Vertex's classification schema (a slice's metrics)."""
    import numpy as np

    clipped = np.clip(scores, EPSILON, 1 - EPSILON)
    binary_loss = float(-np.mean(truth * np.log(clipped) + (1 - truth) * np.log(1 - clipped)))
    return {
        "auPrc": auprc,
        "auRoc": auroc,
        "logLoss": binary_loss,
        "confidenceMetrics": confidence_metrics(truth[:, None], scores[:, None]),
    }
