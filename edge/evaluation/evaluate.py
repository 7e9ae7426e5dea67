"""A registry version evaluated locally, the same way on both targets: its artifact (`artifactUri`) downloaded through
google-cloud-storage, loaded with the predictor the twin's model servers use, and run on the model's held-out
instances (the `heldout` hook of models/<name>/hooks.py); behavioural tests with its `perturbations` hook and the
thresholds of its params.yaml (`evaluate:`)."""

from __future__ import annotations

import hashlib
import logging
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.config import ModelConfig
from edge.evaluation import EvaluationError
from edge.evaluation.behaviour import Thresholds
from edge.project import Project

if TYPE_CHECKING:
    import numpy as np

    from edge.models import ModelSpec

log = logging.getLogger(__name__)

PARAMS_SECTION = "evaluate"
BATCH = 1000  # instances per predictor call
PROBABILITY_OUTPUTS = ("probabilities", "scores", "probs")  # output names read as class probabilities


@dataclass
class Evaluation:
    """One version's evaluation: what goes to DVC, to the registry and to the gate.

    `instances` and `probabilities` are the held-out instances and the model's answers the metrics came from (a
    reference for drift monitoring, say)."""

    model: str  # edge's model name
    version: str
    registry: str  # projects/.../models/ID
    split: str
    metrics: dict  # edge.evaluation.metrics.summarize()
    behaviour: dict  # edge.evaluation.behaviour.run_tests()
    thresholds: dict
    lineage: dict
    heldout: str  # digest of the held-out instances and labels (two evaluations on the same data share it)
    instances: Any = field(repr=False, default=None)
    probabilities: Any = field(repr=False, default=None)

    @property
    def version_name(self) -> str:
        return f"{self.registry}@{self.version}"

    def metadata(self, **extra) -> dict:
        """The evaluation's metadata in the registry: everything edge shows and gates on that Vertex's metrics
        schema has no field for; `extra` adds keys (a monitoring reference, say)."""
        from edge.state import whoami

        return finite(
            {
                "producer": "edge",
                "model": self.model,
                "version": self.version,
                "split": self.split,
                "instances": len(self.instances) if self.instances is not None else None,
                "heldout": self.heldout,
                "summary": self.metrics["summary"],
                "classes": self.metrics["classes"],
                "calibration": self.metrics["calibration"],
                "behaviour": self.behaviour,
                "thresholds": self.thresholds,
                "lineage": self.lineage,
                "evaluated_by": whoami(),
                "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **extra,
            }
        )


def finite(value):
    """`value` with NaN and infinities replaced by None (JSON and protobuf Struct hold neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def load_thresholds(project: Project, model: ModelConfig) -> Thresholds:
    """The `evaluate:` section of the model's params file, checked (defaults where it is silent)."""
    import yaml

    path = project.root / model.params
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EvaluationError(f"cannot read {model.params}: {getattr(exc, 'problem', exc)}") from None
    section = raw.get(PARAMS_SECTION, {}) if isinstance(raw, dict) else None
    if not isinstance(section, dict):
        raise EvaluationError(f"{model.params}: `{PARAMS_SECTION}:` must be a mapping")
    known = {"instances", "images", "seed", "invariance", "min_class_recall"}  # images: the older name of instances
    unknown = sorted(set(section) - known)
    if unknown:
        raise EvaluationError(f"{model.params}: {PARAMS_SECTION}: unknown key(s) {unknown}; known: {sorted(known)}")
    where = f"{model.params}: {PARAMS_SECTION}"
    sample = "instances" if "instances" in section else "images"  # how many held-out instances are perturbed
    invariance = section.get("invariance") or {}
    if not isinstance(invariance, dict):
        raise EvaluationError(f"{where}.invariance must map each perturbation to its minimum pass rate")
    return Thresholds(
        images=_number(section.get(sample, 1000), f"{where}.{sample}", integer=True, low=1),
        seed=_number(section.get("seed", 42), f"{where}.seed", integer=True, low=0),
        invariance={str(k): _rate(v, f"{where}.invariance.{k}") for k, v in invariance.items()},
        min_class_recall=_rate(section.get("min_class_recall", 0.0), f"{where}.min_class_recall"),
    )


def _number(value, where: str, integer: bool = False, low: float = 0):
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < low:
        raise EvaluationError(f"{where} must be {'an integer' if integer else 'a number'} >= {low}, got {value!r}")
    return value


def _rate(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise EvaluationError(f"{where} must be a share between 0 and 1, got {value!r}")
    return float(value)


def heldout(project: Project, model: ModelConfig, split: str = "test", pull: bool = False):
    """(instances, labels) of the held-out split from the model's `heldout` hook, in the serving input format.
    With `pull`, missing data is first fetched from the DVC remote (the pipeline's outputs)."""
    import numpy as np

    spec = project.spec(model)
    hook = spec.hook("heldout")
    try:
        instances, labels = hook(project.root, split)
    except FileNotFoundError as exc:
        if not pull:
            raise EvaluationError(f"the held-out data of {model.name} is missing ({exc}): run `invoke train`") from None
        from edge.data import dvc

        log.info("fetching %s's prepared data from the DVC remote", model.name)
        dvc(project, "pull", "--quiet", f"{model.path}/dvc.yaml")
        return heldout(project, model, split, pull=False)
    except (ValueError, OSError) as exc:
        raise EvaluationError(f"{spec.folder.name}/{spec.hooks_file} heldout: {exc}") from None
    instances, labels = np.asarray(instances), np.asarray(labels).astype(np.int64)
    if len(instances) != len(labels) or len(labels) == 0:
        returned = f"{len(instances)} instances and {len(labels)} labels"
        raise EvaluationError(f"{spec.folder.name}/{spec.hooks_file} heldout returned {returned}")
    return instances, labels


def digest(instances: np.ndarray, labels: np.ndarray) -> str:
    return hashlib.sha256(instances.tobytes() + labels.tobytes()).hexdigest()[:16]


def download_artifact(project: Project, uri: str, folder: Path) -> None:
    """Every object under the gs:// directory `uri` into `folder` (the model's files, as a model server gets them)."""
    if not uri.startswith("gs://"):
        raise EvaluationError(f"the version's artifact {uri!r} is not a gs:// directory")
    bucket, _, prefix = uri.removeprefix("gs://").partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    blobs = [b for b in project.target.storage_client().list_blobs(bucket, prefix=prefix) if not b.name.endswith("/")]
    if not blobs:
        raise EvaluationError(f"no model files under {uri}")
    for blob in blobs:
        path = folder / blob.name[len(prefix) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(path))


class Prober:
    """Class probabilities from a predictor, in batches: the predictor's one input, and its probabilities output
    (a TensorFlow signature's) or its `class_probabilities` (a scikit-learn or XGBoost model, which may serve
    classes only: `predict_proba`, the Booster's probabilities)."""

    def __init__(self, predictor, classes: int | None):
        if len(predictor.inputs) != 1:
            names = ", ".join(s.name for s in predictor.inputs)
            raise EvaluationError(f"the model takes {len(predictor.inputs)} inputs ({names}); edge evaluates one")
        self.predictor = predictor
        self.input = predictor.inputs[0]
        names = predictor.output_names
        self.direct = getattr(predictor, "class_probabilities", None)
        self.output = next((n for n in PROBABILITY_OUTPUTS if n in names), names[0] if len(names) == 1 else None)
        if self.output is None and self.direct is None:
            raise EvaluationError(f"the model's outputs ({', '.join(names)}) have none named {PROBABILITY_OUTPUTS}")
        self.classes = classes
        self.batch = min(BATCH, predictor.batch_limit or BATCH)

    def __call__(self, instances: np.ndarray) -> np.ndarray:
        import numpy as np

        expected, got = tuple(self.input.shape), instances.shape[1:]
        if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got, strict=True)):
            raise EvaluationError(
                f"the held-out instances have shape {got}, the model's input {self.input.name} takes {expected}"
            )
        parts = [
            self._batch(instances[i : i + self.batch].astype(self.input.dtype))
            for i in range(0, len(instances), self.batch)
        ]
        probabilities = np.concatenate(parts).astype(np.float64)
        self._check(probabilities, len(instances))
        return probabilities

    def _batch(self, batch: np.ndarray) -> np.ndarray:
        if self.direct is not None:
            probabilities = self.direct(batch)
            if probabilities is None:
                raise EvaluationError(
                    f"the {self.predictor.framework} model gives no class probabilities (a classifier with "
                    "predict_proba, or an XGBoost multi:softprob / binary:logistic model, can be evaluated)"
                )
            return probabilities
        return self.predictor.run({self.input.name: batch})[self.output]

    def _check(self, probabilities: np.ndarray, count: int) -> None:
        import numpy as np

        if probabilities.shape[0] != count or probabilities.ndim != 2:
            raise EvaluationError(f"output {self.output} has shape {probabilities.shape}, not [instances, classes]")
        if self.classes and probabilities.shape[1] != self.classes:
            raise EvaluationError(
                f"output {self.output} has {probabilities.shape[1]} classes; model.yaml lists {self.classes} labels"
            )
        if not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3) or probabilities.min() < 0:
            raise EvaluationError(f"output {self.output} is not class probabilities (each row must sum to 1)")


def evaluate_version(
    project: Project,
    model: ModelConfig,
    version: str | None = None,
    lineage: dict | None = None,
    split: str = "test",
    pull: bool = False,
) -> Evaluation:
    """Evaluates registry `version` (default: the default version) of `model` on its held-out `split`."""
    from edge.evaluation.registry import registry_version

    found = registry_version(project, model, version)
    spec = project.spec(model)
    thresholds = load_thresholds(project, model)
    instances, labels = heldout(project, model, split, pull=pull)
    log.info("evaluating %s version %s on %d %s instances", model.name, found.version, len(labels), split)
    with tempfile.TemporaryDirectory(prefix="edge-evaluate-") as tmp:
        download_artifact(project, found.artifact_uri, Path(tmp))
        probe = _load(Path(tmp), len(spec.labels) or None)
        probabilities = probe(instances)
        metrics, behaviour = _score(spec, probe, instances, labels, probabilities, thresholds)
    return Evaluation(
        model=model.name,
        version=found.version,
        registry=found.registry,
        split=split,
        metrics=metrics,
        behaviour=behaviour,
        thresholds=thresholds.as_dict(),
        lineage={"labels": found.labels, **(lineage or {})},
        heldout=digest(instances, labels),
        instances=instances,
        probabilities=probabilities,
    )


def _load(model_dir: Path, classes: int | None) -> Prober:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up notices, as the model servers do
    from edge.twin.vertex.serving.predictor import load_predictor

    try:
        predictor = load_predictor(model_dir)
    except Exception as exc:  # TensorFlow's own errors: name the first line
        raise EvaluationError(f"cannot load the model: {str(exc).strip().splitlines()[0]}") from None
    return Prober(predictor, classes)


def _score(
    spec: ModelSpec, probe: Prober, instances, labels, probabilities, thresholds: Thresholds
) -> tuple[dict, dict]:
    """The metrics of the held-out split, then the behavioural tests."""
    from edge.evaluation import behaviour, metrics

    summary = metrics.summarize(labels, probabilities, list(spec.labels))
    recalls = {row["class"]: row["recall"] for row in summary["classes"]}
    perturb = getattr(spec.hooks, "perturbations", None) if spec.hooks else None
    if perturb is None:
        log.info("%s has no `perturbations` hook: no invariance tests", spec.name)
        perturb = lambda batch, rng: {}  # noqa: E731
    tests = behaviour.run_tests(
        lambda batch: probe(batch).argmax(axis=1),
        instances,
        probabilities.argmax(axis=1),
        recalls,
        perturb,
        thresholds,
    )
    return finite(summary), tests
