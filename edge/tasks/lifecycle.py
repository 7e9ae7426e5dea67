"""The model lifecycle: init, train, deploy, rollback, endpoint, predict, status, destroy, force-unlock."""

from __future__ import annotations

from pathlib import Path

from invoke import Exit, task

from edge.tasks.common import MODEL_HELP, TARGET_HELP, WAIT_HELP, confirm, locked_model, open_project, user_errors


@task(
    help={
        "target": TARGET_HELP,
        "project": "Google Cloud project id for a new edge.yaml",
        "region": "region for a new edge.yaml (default us-central1)",
        "bucket": "bucket for a new edge.yaml (default <project>-edge)",
        "yes": "gcp: apply the Terraform plan without asking",
    }
)
def init(c, target=None, project=None, region=None, bucket=None, yes=False):
    """Set up the project on its target: edge.yaml, bucket, state, DVC remote (gcp: Terraform)."""
    from edge import config, lifecycle

    with user_errors():
        if not Path("edge.yaml").exists():
            name = project or "edge-twin"
            path = lifecycle.write_config(
                Path("."), target or "twin", name, region or "us-central1", bucket or f"{name}-edge"
            )
            print(f"wrote {path}")
        else:
            lifecycle.check_init_options(config.load(Path(".")), project=project, region=region, bucket=bucket)
        proj = open_project(target)
        if proj.target.name == "gcp":
            from edge import data, infra

            outputs = infra.init_gcp(proj, yes=yes)
            lifecycle.remember_infra(proj, outputs)
            data.init_data(proj)
            print("infrastructure applied, outputs kept in the state, DVC remote set; next: invoke data.seed")
            return
        for line in lifecycle.init_twin(proj):
            print(line)
        print("next: invoke data.seed, then invoke train")


@task(help={"model": MODEL_HELP, "target": TARGET_HELP, "wait": WAIT_HELP})
def train(c, model=None, target=None, wait=0):
    """`dvc repro` the model's pipeline: prepare, then a CustomJob and a new registry version."""
    from edge import training

    with user_errors(), locked_model(target, model, "train", wait) as (project, spec):
        changed = training.reproduce(project, spec)
        print(
            "trained and registered; see `invoke experiments`"
            if changed
            else f"{spec.name}: data, params and code unchanged since the last run; nothing to train"
        )


@task(
    help={
        "model": MODEL_HELP,
        "target": TARGET_HELP,
        "version": "registry version or alias (default: the latest)",
        "traffic": "percentage of traffic for the new version; under 100 keeps the old one (canary)",
        "wait": WAIT_HELP,
    }
)
def deploy(c, model=None, target=None, version=None, traffic=100, wait=0):
    """Deploy a registry version without downtime: beside the current one, smoke-tested, then traffic moved."""
    from edge import deploy as deploying

    with user_errors(), locked_model(target, model, "deploy", wait) as (project, spec):
        result = deploying.deploy_version(project, spec, version, int(traffic))
    if not result["changed"]:
        print(f"{spec.name} version {result['version']} already serves all traffic")
        return
    shares = ", ".join(f"{i}: {p}%" for i, p in result["traffic"].items())
    print(
        f"{spec.name} version {result['version']} deployed to {result['endpoint']} (traffic {shares}); "
        f"smoke test predicted {result['smoke']}"
    )


@task(help={"model": MODEL_HELP, "target": TARGET_HELP, "wait": WAIT_HELP})
def rollback(c, model=None, target=None, wait=0):
    """Go back to the version that served before the last deploy (zero downtime)."""
    from edge import deploy as deploying

    with user_errors(), locked_model(target, model, "rollback", wait) as (project, spec):
        result = deploying.rollback(project, spec)
    print(f"{spec.name} rolled back to version {result['version']}")


@task(help={"model": MODEL_HELP, "target": TARGET_HELP})
def endpoint(c, model=None, target=None):
    """Print the endpoint's resource name, URL and what is deployed."""
    from edge import deploy as deploying

    with user_errors():
        project = open_project(target)
        info = deploying.describe_endpoint(project, project.config.model(model))
    print(f"endpoint {info['name']}\nurl      {info['url']}")
    for d in info["deployed"] or [{"id": "-", "version": "nothing deployed", "traffic": 0}]:
        print(f"  deployed model {d['id']}: version {d['version']}, {d['traffic']}% traffic")


@task(help={"model": MODEL_HELP, "target": TARGET_HELP, "payload": 'JSON file {"instances": [...]}'})
def predict(c, model=None, target=None, payload="test_payload.json"):
    """Send a payload to the endpoint and print predictions with class names."""
    from edge import deploy as deploying

    with user_errors():
        project = open_project(target)
        result = deploying.predict(project, project.config.model(model), Path(payload))
    print(f"version {result['version']} answered:")
    for i, row in enumerate(result["predictions"]):
        probability = f" ({row['probability']:.2f})" if row["probability"] is not None else ""
        print(f"  {i}: {row['class_id']} {row['class_name']}{probability}")
    print("predictions:", [row["class_id"] for row in result["predictions"]])


@task(help={"target": TARGET_HELP})
def status(c, target=None):
    """Target, bucket, data version, runs, model versions, endpoint, deployed version and traffic, lock."""
    from edge import lifecycle

    with user_errors():
        info = lifecycle.status(open_project(target))
    print(f"target   {info['target']} (project {info['project']}, {info['region']})")
    print(f"bucket   {info['bucket']}")
    print(f"data     {info['data'] or 'not seeded (invoke data.seed)'}")
    for name, m in info["models"].items():
        print(f"model    {name}: {m['runs']} runs, versions {', '.join(m['versions']) or 'none'}")
        print(f"  endpoint {m['endpoint'] or 'none'}")
        for d in m["deployed"]:
            print(f"  deployed version {d['version']} ({d['deployed_model_id']}): {d['traffic']}% traffic")
    print(f"lock     {info['lock'] or 'free'}")


@task(help={"target": TARGET_HELP, "yes": "do not ask", "wait": WAIT_HELP})
def destroy(c, target=None, yes=False, wait=0):
    """Remove this project's endpoints, models and bucket contents (gcp: also terraform destroy)."""
    from edge import lifecycle

    with user_errors():
        project = open_project(target)
        if not yes and not confirm(
            f"destroy endpoints, models and gs://{project.config.bucket} contents on {project.target.name}?"
        ):
            raise Exit("edge: nothing destroyed", code=1)
        with project.state.lock("destroy", float(wait)):
            for line in lifecycle.destroy(project):
                print(line)


@task(name="force-unlock", help={"target": TARGET_HELP, "yes": "do not ask"})
def force_unlock(c, target=None, yes=False):
    """Remove a lock left by a command that died (asks first)."""
    with user_errors():
        project = open_project(target)
        holder = project.state.current_lock()
        if holder is None:
            print("no lock held")
            return
        if not yes and not confirm(f"remove the lock held by {holder.describe()}?"):
            raise Exit("edge: lock kept", code=1)
        if not project.state.force_unlock(holder):
            raise Exit("edge: the lock changed meanwhile (another command took it); nothing removed", code=1)
        print(f"removed the lock held by {holder.describe()}")
