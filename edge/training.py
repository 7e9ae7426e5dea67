"""The train stage of a model's DVC pipeline: a Vertex CustomJob on the exact data version, then a registry version.

Run by DVC as `python -m edge.training --model NAME` (see models/<name>/dvc.yaml); `invoke train`
runs `dvc repro`, so an unchanged pipeline submits nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from edge.config import ConfigError, ModelConfig
from edge.errors import EdgeError
from edge.project import Project, open_project

OUTPUTS = "outputs"
PREPARED = Path("data/prepared")
SPLITS = ("train", "validation", "test")
REQUIRED_PARAMS = {"epochs": int, "batch_size": int, "learning_rate": (int, float), "seed": int}
TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


class TrainingError(EdgeError):
    """Training could not go on; the message is one line that says why."""


@dataclass(frozen=True)
class StageInputs:
    uris: dict[str, str]  # split -> gs:// URL of the exact DVC object
    hashes: dict[str, str]  # split -> md5 (DVC's content hash)


def load_params(project: Project, model: ModelConfig) -> dict:
    """The `train:` section of the model's params file, checked."""
    import yaml

    path = project.root / model.params
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TrainingError(f"{model.params} is missing") from None
    except yaml.YAMLError as exc:
        raise TrainingError(f"{model.params} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    train = raw.get("train") if isinstance(raw, dict) else None
    if not isinstance(train, dict):
        raise TrainingError(f"{model.params} needs a `train:` mapping")
    for key, kind in REQUIRED_PARAMS.items():
        value = train.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or value <= 0 and key != "seed":
            raise TrainingError(f"{model.params}: train.{key} must be a positive number, got {value!r}")
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


def stage_trainer(project: Project, model: ModelConfig) -> str:
    """Builds the trainer package (sdist) and uploads it to staging; returns its gs:// URL."""
    source = project.root / model.path / model.training.package
    if not source.is_dir():
        raise TrainingError(f"no trainer package at {source.relative_to(project.root)} (edge.yaml training.package)")
    with tempfile.TemporaryDirectory() as out:
        build = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])",
                out,
            ],
            cwd=source,
            capture_output=True,
            text=True,
        )
        if build.returncode != 0:
            raise TrainingError(f"building {source.name} failed: {build.stderr.strip().splitlines()[-1:]}")
        archive = next(Path(out).glob("*.tar.gz"))
        digest = hashlib.md5(archive.read_bytes()).hexdigest()[:12]
        name = f"staging/trainers/{model.name}/{digest}/{archive.name}"
        project.bucket.blob(name).upload_from_filename(str(archive))
    return f"gs://{project.config.bucket}/{name}"


def git_lineage(root: Path) -> tuple[str, bool]:
    """(commit, dirty) of the project's git repo; ("none", True) before the first commit."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    if head.returncode != 0:
        return "none", True
    dirty = (
        subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        != ""
    )
    return head.stdout.strip(), dirty


def wait_for_job(project: Project, job, on_line=print) -> str:
    """Polls the job at the target's pace, printing state changes and (on the twin) its log lines."""
    import requests

    last_state, offset = None, 0
    log_url = f"{project.target.vertex_endpoint}/_twin/logs/{job.resource_name}" if project.target.is_local else None
    while True:
        state = job.state.name
        if state != last_state:
            on_line(f"[job] {state.removeprefix('JOB_STATE_').lower()}")
            last_state = state
        if log_url:
            chunk = requests.get(log_url, params={"offset": offset}, timeout=30).json()
            offset = chunk["nextOffset"]
            for line in chunk["text"].splitlines():
                on_line(f"  {line}")
        if state in TERMINAL:
            return state
        time.sleep(project.target.poll_seconds)


def run_training(project: Project, model: ModelConfig) -> dict:
    """Trains on Vertex (or the twin), registers the model version with lineage, records the Sacred run."""
    from edge import experiments

    params = load_params(project, model)
    inputs = stage_inputs(project, model)
    package = stage_trainer(project, model)
    commit, dirty = git_lineage(project.root)
    from edge.data import data_version

    lineage = {
        "git_commit": commit,
        "git_dirty": dirty,
        "data": data_version(project) or "none",
        "prepared": inputs.hashes,
        "params_hash": params_hash(params),
    }

    metrics = {}  # the job's full metrics (the Sacred result keeps the summary)

    def train(run) -> dict:
        vertex = project.vertex()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"gs://{project.config.bucket}/runs/{model.name}/{stamp}-{run._id}"
        args = [f"--{split}={uri}" for split, uri in inputs.uris.items()]
        args += [f"--params-json={json.dumps(params)}", f"--metrics-uri={base}/metrics.json"]
        job = vertex.CustomJob(
            display_name=f"{model.name}-train-{run._id}",
            worker_pool_specs=[
                {
                    "machine_spec": {"machine_type": model.training.machine_type},
                    "replica_count": 1,
                    "python_package_spec": {
                        "executor_image_uri": model.training.image,
                        "package_uris": [package],
                        "python_module": model.training.module,
                        "args": args,
                    },
                }
            ],
            base_output_dir=base,
            labels={"edge_model": model.name, "edge_run": str(run._id)},
            staging_bucket=project.staging,
        )
        infra = project.state.read()[0].get("infra", {})  # gcp: Terraform's trainer account and network
        submitted = False
        try:
            job.submit(
                service_account=infra.get("service_accounts", {}).get("trainer"),
                network=(infra.get("tracker") or {}).get("vertex_network"),
            )
            submitted = True
            run.info["job"] = job.resource_name
            state = wait_for_job(project, job)
        except BaseException:  # Ctrl-C or a lost connection: no orphan job, nothing registered
            if submitted:
                try:
                    job.cancel()
                except Exception as exc:
                    print(f"edge: could not cancel {job.resource_name}: {exc}", file=sys.stderr)
            raise
        if state != "JOB_STATE_SUCCEEDED":
            message = job.error.message.strip().splitlines()[0] if job.error.message else state
            raise TrainingError(f"training job {job.resource_name} ended {state}: {message}")
        metrics.update(json.loads(project.bucket.blob(f"{base.split('/', 3)[3]}/metrics.json").download_as_bytes()))
        for row in metrics["epochs"]:
            for key, value in row.items():
                if key != "epoch":
                    run.log_scalar(key, value, row["epoch"])
        version = register(
            project,
            model,
            f"{base}/model",
            {
                "edge_model": model.name,
                "git_commit": commit[:12],
                "data": lineage["data"][:12],
                "params": lineage["params_hash"],
                "run": str(run._id),
            },
        )
        run.info["model_version"] = version
        return {
            "accuracy": metrics["accuracy"],
            "loss": metrics["loss"],
            "model": version,
            "job": job.resource_name,
            "run": run._id,
        }

    result = experiments.record(project, model, params, lineage, train)
    write_outputs(project, model, {**result, "metrics": metrics}, lineage)
    return result


def register(project: Project, model: ModelConfig, artifact_uri: str, labels: dict[str, str]) -> dict:
    """Uploads a new version of the model's registry entry (the first upload creates it)."""
    vertex = project.vertex()
    state, _ = project.state.read()
    parent = state.get("models", {}).get(model.name, {}).get("registry")
    uploaded = vertex.Model.upload(
        display_name=model.name,
        artifact_uri=artifact_uri,
        serving_container_image_uri=model.serving.image,
        parent_model=parent,
        is_default_version=True,
        labels=labels,
    )

    def remember(state: dict) -> None:
        state.setdefault("models", {}).setdefault(model.name, {})["registry"] = uploaded.resource_name

    project.state.update(remember)
    return {"name": uploaded.resource_name, "version": uploaded.version_id}


def write_outputs(project: Project, model: ModelConfig, result: dict, lineage: dict) -> None:
    """metrics.json (dvc metrics), history.json (dvc plots), confusion_matrix.json and model.json."""
    out = project.root / model.path / OUTPUTS
    out.mkdir(exist_ok=True)
    metrics = result["metrics"]
    files = {
        "metrics.json": {"accuracy": metrics["accuracy"], "loss": metrics["loss"]},
        "history.json": metrics["epochs"],
        "confusion_matrix.json": metrics["confusion_matrix"],
        "model.json": {
            "model": result["model"]["name"],
            "version": result["model"]["version"],
            "job": result["job"],
            "run": result["run"],
            **lineage,
        },
    }
    for name, content in files.items():
        (out / name).write_text(json.dumps(content, indent=1) + "\n")


def _project_root(start: Path) -> Path:
    for folder in (start, *start.parents):
        if (folder / "edge.yaml").exists():
            return folder
    raise ConfigError(f"no edge.yaml in {start} or above")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edge.training", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model name in edge.yaml")
    args = parser.parse_args(argv)
    from google.api_core.exceptions import GoogleAPICallError

    from edge.state import StateError

    try:
        project = open_project(_project_root(Path.cwd()), os.environ.get("EDGE_TARGET"))
        result = run_training(project, project.config.model(args.model))
    except (TrainingError, ConfigError, StateError) as exc:
        print(f"edge: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except GoogleAPICallError as exc:
        print(f"edge: Google Cloud API error: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None
    print(
        f"registered {result['model']['name']}@{result['model']['version']} "
        f"(test accuracy {result['accuracy']:.4f}, run {result['run']})"
    )


if __name__ == "__main__":
    main()


def reproduce(project: Project, model: ModelConfig) -> bool:
    """`dvc repro` of the model's pipeline on the project's target, then `dvc push`; False if nothing changed."""
    from edge.data import DATASET_DIR, configure_remote, dvc

    configure_remote(project)
    pipeline = f"{model.path}/dvc.yaml"
    if not (project.root / pipeline).exists():
        raise TrainingError(f"{pipeline} is missing")
    load_params(project, model)  # a broken params file fails here, in one line, before DVC runs anything
    if not (project.root / f"{DATASET_DIR}.dvc").exists():
        raise TrainingError(f"no data yet: {DATASET_DIR}.dvc is missing; run `invoke data.seed`")
    if not (project.root / DATASET_DIR).exists():  # a fresh clone: the data is in the remote
        dvc(project, "pull", "--quiet", f"{DATASET_DIR}.dvc")
    os.environ["EDGE_TARGET"] = project.target.name
    registered = project.state.read()[0].get("models", {}).get(model.name, {}).get("registry")
    if not registered and (project.root / model.path / OUTPUTS / "model.json").exists():
        # trained before, but the registry is gone (invoke destroy, a new project): train again
        dvc(project, "repro", "--force", f"{pipeline}:train")
    else:
        status = dvc(project, "status", pipeline, "--json", quiet=True)
        if json.loads(status.stdout or "{}") == {}:
            return False
        dvc(project, "repro", pipeline)
    dvc(project, "push", "--quiet")
    return True
