"""The model registry: each training run becomes a new version of the model's entry, labelled with its lineage."""

from __future__ import annotations

import subprocess
from pathlib import Path

from edge.config import ModelConfig
from edge.project import Project


def git_lineage(root: Path) -> tuple[str, bool]:
    """(commit, dirty) of the project's git repo; ("none", True) before the first commit."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    if head.returncode != 0:
        return "none", True
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
    )
    return head.stdout.strip(), status.stdout.strip() != ""


def lineage_labels(model: ModelConfig, lineage: dict, run_id: object) -> dict[str, str]:
    """The registry labels that tie a version to its code, data, params and run."""
    return {
        "edge_model": model.name,
        "git_commit": lineage["git_commit"][:12],
        "data": lineage["data"][:12],
        "params": lineage["params_hash"],
        "run": str(run_id),
    }


def register(project: Project, model: ModelConfig, artifact_uri: str, labels: dict[str, str]) -> dict:
    """Uploads a new version of the model's registry entry (the first upload creates it)."""
    vertex = project.vertex()
    parent = project.state.read().model(model.name).registry
    uploaded = vertex.Model.upload(
        display_name=model.name,
        artifact_uri=artifact_uri,
        serving_container_image_uri=model.serving.image,
        parent_model=parent,
        is_default_version=True,
        labels=labels,
    )

    def remember(state) -> None:
        state.model(model.name).registry = uploaded.resource_name

    project.state.update(remember)
    return {"name": uploaded.resource_name, "version": uploaded.version_id}
