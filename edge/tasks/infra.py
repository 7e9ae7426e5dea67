"""Terraform for the gcp target: plan, apply, destroy and read the outputs of infra/ (edge.yaml -> tfvars)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from invoke import Collection, Exit, task

TARGET_HELP = "target to manage (default: edge.yaml `target`); only gcp has infrastructure"
YES_HELP = "do not ask for confirmation (CI)"


def _config(target):
    from edge import config

    try:
        loaded = config.load(Path("."))
    except config.ConfigError as exc:
        raise Exit(str(exc), code=1) from None
    return dataclasses.replace(loaded, target=target) if target else loaded


def _call(function, *args, **kwargs):
    from edge.infra import InfraError

    try:
        return function(*args, **kwargs)
    except InfraError as exc:
        raise Exit(str(exc), code=1) from None


@task(help={"target": TARGET_HELP})
def plan(c, target=None):
    """Render tfvars from edge.yaml, init the gcs backend and print the Terraform plan for review."""
    from edge import infra

    changes = _call(infra.plan_infra, _config(target))
    print("plan saved: `invoke infra.apply` applies it" if changes else "no changes: infrastructure matches edge.yaml")


@task(
    help={
        "target": TARGET_HELP,
        "yes": YES_HELP,
        "saved": "apply the plan saved by an earlier `invoke infra.plan` (CI: the approved plan) instead of a new one",
    }
)
def apply(c, target=None, yes=False, saved=False):
    """Plan, ask, then apply exactly the reviewed plan (bucket, accounts, endpoints, tracker, web service)."""
    from edge import infra

    config = _config(target)
    question = f"Apply this plan to project {config.project}?"
    if _call(infra.apply_infra, config, infra.ask(question, yes), saved=saved):
        print("applied: `invoke infra.output` lists what was created")


@task(help={"target": TARGET_HELP, "yes": YES_HELP})
def destroy(c, target=None, yes=False):
    """Destroy everything infra/ created except the project bucket (data, models and Terraform state stay)."""
    from edge import infra

    config = _config(target)
    _call(infra.destroy_infra, config, infra.ask(f"Destroy these resources of project {config.project}?", yes))


@task(help={"target": TARGET_HELP, "json_": "print the outputs as one JSON object"})
def output(c, target=None, json_=False):
    """Print Terraform's outputs (bucket, endpoints, service accounts, tracker, web URL)."""
    from edge import infra

    values = _call(infra.outputs, _config(target or "gcp"))
    if json_:
        print(json.dumps(values, indent=2))
        return
    for name, value in sorted(values.items()):
        print(f"{name}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")


ns = Collection("infra", plan, apply, destroy, output)
