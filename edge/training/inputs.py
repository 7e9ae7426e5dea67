"""What a training job reads: the `train:` params, checked by the model's own `validate_params` hook, and the
prepared arrays at their DVC addresses."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from edge.config import ModelConfig
from edge.project import Project
from edge.training import TrainingError

PREPARED = Path("data/prepared")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class StageInputs:
    uris: dict[str, str]  # split -> gs:// URL of the exact DVC object
    hashes: dict[str, str]  # split -> md5 (DVC's content hash)


def read_params(project: Project, model: ModelConfig) -> dict:
    """The model's params file as a mapping (empty when it holds nothing); TrainingError (one line) otherwise."""
    import yaml

    path = project.root / model.params
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TrainingError(f"{model.params} is missing") from None
    except yaml.YAMLError as exc:
        raise TrainingError(f"{model.params} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return raw if isinstance(raw, dict) else {}


def load_params(project: Project, model: ModelConfig) -> dict:
    """The `train:` section of the model's params file, checked by the model's `validate_params(train) -> str | None`
    hook (models/<name>/hooks.py; none: any mapping), so a broken params file fails in one line before DVC runs."""
    train = read_params(project, model).get("train")
    if not isinstance(train, dict):
        raise TrainingError(f"{model.params} needs a `train:` mapping")
    spec = project.spec(model)
    validate = getattr(spec.hooks, "validate_params", None) if spec.hooks else None
    problem = validate(dict(train)) if validate else None
    if problem:
        raise TrainingError(f"{model.params}: {problem}")
    return train


def params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def stage_inputs(project: Project, model: ModelConfig) -> StageInputs:
    """Puts the prepared arrays where DVC's remote keeps them (files/md5/xx/...) and returns their URLs.

    This is what `dvc push` would upload; it cannot run here because `dvc repro` holds the repo lock.
    """
    from edge.data import file_hash

    folder = project.root / PREPARED / model.name
    uris, hashes = {}, {}
    for split in SPLITS:
        path = folder / f"{split}.npz"
        if not path.exists():
            raise TrainingError(f"{path.relative_to(project.root)} is missing: run the prepare stage (invoke train)")
        digest = file_hash(path)
        name = f"dvc/files/md5/{digest[:2]}/{digest[2:]}"
        blob = project.bucket.blob(name)
        if not blob.exists():
            blob.upload_from_filename(str(path))
        uris[split], hashes[split] = f"gs://{project.config.bucket}/{name}", digest
    return StageInputs(uris, hashes)
