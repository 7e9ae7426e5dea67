"""`invoke train`: `dvc repro` of the model's pipeline on the project's target, then `dvc push`."""

from __future__ import annotations

import json

from edge.config import ModelConfig
from edge.project import Project
from edge.training import TrainingError
from edge.training.inputs import load_params
from edge.training.stage import OUTPUTS


def reproduce(project: Project, model: ModelConfig, replicas: int | None = None, force: bool = False) -> bool:
    """Runs the model's pipeline; False when data, params and code are unchanged (nothing submitted). `replicas`
    overrides edge.yaml's training.replicas for this run (the stage reads it from its environment: how many
    machines train is no input of the pipeline, so it alone does not make DVC train again; `force` does)."""
    from edge.data import configure_remote, dvc
    from edge.training.stage import REPLICAS_VARIABLE

    configure_remote(project)
    pipeline = f"{model.path}/dvc.yaml"
    if not (project.root / pipeline).exists():
        raise TrainingError(f"{pipeline} is missing")
    load_params(project, model)  # a broken params file fails here, in one line, before DVC runs anything
    data = project.spec(model).data
    if data and not (project.root / f"{data}.dvc").exists():
        raise TrainingError(
            f"no data yet: {data}.dvc is missing; run `invoke data.seed --model {model.name}` "
            f"(or `invoke data.add PATH --model {model.name}`)"
        )
    if data and not (project.root / data).exists():  # a fresh clone: the data is in the remote
        dvc(project, "pull", "--quiet", f"{data}.dvc")
    env = {REPLICAS_VARIABLE: str(replicas)} if replicas else {}
    registered = project.state.read().model(model.name).registry
    if force or not registered and (project.root / model.path / OUTPUTS / "model.json").exists():
        # asked to, or trained before but the registry is gone (invoke destroy, a new project): train again, and
        # evaluate the new version (the stages after train)
        dvc(project, "repro", "--force", "--downstream", f"{pipeline}:train", env=env)
    else:
        status = dvc(project, "status", pipeline, "--json", quiet=True)
        if json.loads(status.stdout or "{}") == {}:
            return False
        dvc(project, "repro", pipeline, env=env)
    dvc(project, "push", "--quiet")
    return True
