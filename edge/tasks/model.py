"""Your own model: `invoke model.init NAME [--template sklearn-tabular|keras-image]` writes models/NAME/ from a
template (edge/templates/models/) and adds the model to edge.yaml, comments kept (edge/scaffold.py)."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, task

from edge.tasks.common import user_errors

TEMPLATES = ("sklearn-tabular", "keras-image")  # edge.scaffold.TEMPLATES, named here so --help stays instant


@task(
    help={
        "name": "the model's name: lower-case letters, digits and dashes, starting with a letter",
        "template": f"{' or '.join(TEMPLATES)} (default {TEMPLATES[0]}): a scikit-learn classifier of CSV rows, "
        "or a Keras CNN for images",
    }
)
def init(c, name, template=TEMPLATES[0]):
    """Start a model: models/NAME/ (pipeline, params, hooks, trainer package) and its entry in edge.yaml."""
    from edge import scaffold, ui

    with user_errors():
        made = scaffold.init_model(Path("."), name, template)
    data = scaffold.TEMPLATES[made.template].data
    ui.show(f"{made.folder}/ written from the {made.template} template; edge.yaml has its entry (endpoint {name}).")
    ui.show(f"Its data: {data}. Next:")
    width = max(len(command) for command, _ in made.next_steps)
    for command, what in made.next_steps:
        ui.show(f"  {command.ljust(width)}  # {what}")
    ui.show(f"Then commit {made.folder}/ (with dvc.lock, schema.json, test_payload.json), edge.yaml, data/{name}.dvc")


ns = Collection("model", init)
