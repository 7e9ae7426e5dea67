"""Versioned data with DVC (remote gs://<bucket>/dvc): init, seed a model's data, add your own."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, task

from edge.tasks.common import MODEL_HELP, TARGET_HELP, session


@task(help={"target": TARGET_HELP})
def init(c, target=None):
    """`dvc init` with the project's bucket as the default remote (run by `invoke init`)."""
    from edge import data, ui

    with session(target) as project:
        data.init_data(project)
    ui.show(f"DVC ready: remote gs://{project.config.bucket}/dvc")


@task(
    help={
        "model": MODEL_HELP,
        "target": TARGET_HELP,
        "source": "a folder the model's seed hook reads instead of its default source (see the model's hooks.py)",
    }
)
def seed(c, model=None, target=None, source=None):
    """Fetch the model's raw data with its seed hook (checked), `dvc add` and `dvc push` it."""
    from edge import data, ui

    with session(target) as project:
        spec = project.config.model(model)
        origin, folder = data.seed(project, spec, Path(source) if source else None)
        version = data.data_version(project, spec)
    ui.show(f"{folder} from {origin}; version {version}; pushed to gs://{project.config.bucket}/dvc")


@task(help={"path": "your data: a file or a folder", "model": MODEL_HELP, "target": TARGET_HELP})
def add(c, path, model=None, target=None):
    """Put your own data in the model's data folder (model.yaml `data:`), `dvc add` and `dvc push` it."""
    from edge import data, ui

    with session(target) as project:
        spec = project.config.model(model)
        folder = data.add(project, spec, Path(path))
        version = data.data_version(project, spec)
    ui.show(
        f"{path} is now {folder} (version {version}), pushed to gs://{project.config.bucket}/dvc; commit {folder}.dvc"
    )


ns = Collection("data", init, seed, add)
