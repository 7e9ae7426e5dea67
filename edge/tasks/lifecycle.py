"""The model lifecycle: init, train, deploy, rollback, endpoint, predict, status, destroy, force-unlock."""

from __future__ import annotations

from pathlib import Path

from invoke import Exit, task

from edge.tasks.common import JSON_HELP, MODEL_HELP, TARGET_HELP, WAIT_HELP, locked_model, session, user_errors


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
    from edge import config, lifecycle, ui

    with user_errors():
        if not Path("edge.yaml").exists():
            name = project or "edge-twin"
            path = lifecycle.write_config(
                Path("."), target or "twin", name, region or "us-central1", bucket or f"{name}-edge"
            )
            ui.show(f"wrote {path}")
        else:
            lifecycle.check_init_options(config.load(Path(".")), project=project, region=region, bucket=bucket)
    with session(target) as proj:
        done = lifecycle.init_project(proj, yes=yes)
        names = list(proj.config.models)
    for line in done:
        ui.show(line)
    if len(names) == 1:
        ui.show("next: invoke data.seed, then invoke train")
    else:
        ui.show(
            f"next, for each model ({', '.join(names)}): invoke data.seed --model NAME (or data.add PATH --model NAME)"
            ", then invoke train --model NAME"
        )


@task(
    help={
        "model": MODEL_HELP,
        "target": TARGET_HELP,
        "wait": WAIT_HELP,
        "replicas": "machines to train on (default edge.yaml's training.replicas): 1 chief and N-1 workers",
        "force": "train again even if data, params and code are unchanged",
    }
)
def train(c, model=None, target=None, wait=0, replicas=None, force=False):
    """`dvc repro` the model's pipeline: prepare, then a CustomJob and a new registry version."""
    from edge import ui
    from edge.config import MAX_REPLICAS
    from edge.training.pipeline import reproduce

    if replicas is not None and not (str(replicas).isdecimal() and 1 <= int(replicas) <= MAX_REPLICAS):
        raise Exit(f"edge: --replicas must be a whole number from 1 to {MAX_REPLICAS}, got {replicas!r}", code=1)
    with locked_model(target, model, "train", wait) as (project, spec):
        changed = reproduce(project, spec, int(replicas) if replicas else None, force=force)
    ui.show(
        "trained and registered; see `invoke experiments`"
        if changed
        else f"{spec.name}: data, params and code unchanged since the last run; nothing to train (`--force` trains "
        "again)"
    )


@task(
    help={
        "model": MODEL_HELP,
        "target": TARGET_HELP,
        "version": "registry version or alias (default: the latest)",
        "traffic": "percentage of traffic for the new version; under 100 keeps the old one (canary)",
        "wait": WAIT_HELP,
        "force": "deploy even if the gate refuses the version (needs --reason)",
        "reason": "why the gate is overridden: kept in the deploy history (invoke status) and on the version's labels",
    }
)
def deploy(c, model=None, target=None, version=None, traffic=100, wait=0, force=False, reason=None):
    """Deploy a registry version without downtime, if the gate passes it: beside the current one, smoke-tested,
    then traffic moved."""
    from edge import deploy as deploying
    from edge import ui

    if force and not (reason or "").strip():
        raise Exit('edge: --force needs --reason "why" (kept in the deploy history and on the version labels)', code=1)
    if reason and not force:
        raise Exit("edge: --reason goes with --force (it says why the gate is overridden)", code=1)
    with locked_model(target, model, "deploy", wait) as (project, spec):
        result = deploying.deploy_version(project, spec, version, int(traffic), force_reason=reason if force else None)
    if not result["changed"]:
        ui.show(f"{spec.name} version {result['version']} already serves all traffic")
        return
    if result["gate"]:
        ui.show(result["gate"])
    shares = ", ".join(f"{i}: {p}%" for i, p in result["traffic"].items())
    ui.show(
        f"{spec.name} version {result['version']} deployed to {result['endpoint']} (traffic {shares}); "
        f"smoke test predicted {result['smoke']}"
    )


@task(help={"model": MODEL_HELP, "target": TARGET_HELP, "wait": WAIT_HELP})
def rollback(c, model=None, target=None, wait=0):
    """Go back to the version that served before the last deploy (zero downtime)."""
    from edge import deploy as deploying
    from edge import ui

    with locked_model(target, model, "rollback", wait) as (project, spec):
        result = deploying.rollback(project, spec)
    ui.show(f"{spec.name} rolled back to version {result['version']}")


@task(help={"model": MODEL_HELP, "target": TARGET_HELP, "json_": JSON_HELP})
def endpoint(c, model=None, target=None, json_=False):
    """Print the endpoint's resource name, URL and what is deployed."""
    from edge import deploy as deploying
    from edge import ui

    with session(target) as project:
        info = deploying.describe_endpoint(project, project.config.model(model))
    if json_:
        ui.show_json(info)
        return
    ui.show(f"endpoint {info['name']}\nurl      {info['url']}")
    rows = [(d["id"], d["version"], f"{d['traffic']}%") for d in info["deployed"]]
    ui.show_table(rows or [("-", "nothing deployed", "0%")], ["deployed model", "version", "traffic"])


@task(
    help={
        "model": MODEL_HELP,
        "target": TARGET_HELP,
        "payload": 'JSON file {"instances": [...]} (default: the model\'s own, model.yaml `payload:`)',
        "batch": "a batch prediction job instead: a JSON Lines file (one instance a line) or a gs:// URI (`*` allowed)",
        "version": "with --batch: the registry version or alias to run (default: the default version)",
        "summary": "with --batch: count the classes predicted",
    }
)
def predict(c, model=None, target=None, payload=None, batch=None, version=None, summary=False):
    """Send a payload to the endpoint and print predictions with class names (or run a batch prediction job)."""
    from edge import deploy as deploying
    from edge import ui

    if batch is not None or version is not None or summary:
        _predict_batch(target, model, batch, version, summary, payload)
        return
    with session(target) as project:
        result = deploying.predict(project, project.config.model(model), Path(payload) if payload else None)
    ui.show(f"version {result['version']} answered:")
    for i, row in enumerate(result["predictions"]):
        probability = f" ({row['probability']:.2f})" if row["probability"] is not None else ""
        ui.show(f"  {i}: {row['class_id']} {row['class_name']}{probability}")
    ui.show(f"predictions: {[row['class_id'] for row in result['predictions']]}")


def _predict_batch(target, model, source, version, summary, payload) -> None:
    """`invoke predict --batch`: edge.batch runs the job; this prints where its results are, and the classes."""
    from edge import ui
    from edge.batch import predict_batch

    if source is None or payload is not None:
        raise Exit("edge: --version and --summary go with --batch FILE; --batch goes without --payload", code=1)
    with session(target) as project:
        result = predict_batch(project, project.config.model(model), source, version, summary)
    ui.show(
        f"batch prediction {result['job']} (version {result['version']}) "
        f"{result['state'].removeprefix('JOB_STATE_').lower()}: {result['successful']} predicted, "
        f"{result['failed']} failed"
    )
    if result["output"]:
        bad = f"; bad lines: {result['output']}/prediction.errors_stats-*" if result["failed"] else ""
        ui.show(f"results: {result['output']}/prediction.results-*{bad}")
    if result.get("classes"):
        total = sum(result["classes"].values())
        rows = [(name, n, f"{100 * n / total:.1f}%") for name, n in result["classes"].items()]
        ui.show_table(rows, ["class", "predicted", "share"], align=("left", "right", "right"))
    if result["state"] != "JOB_STATE_SUCCEEDED":
        raise Exit(f"edge: batch prediction {result['job']} ended {result['state']}: {result['error']}", code=1)


@task(help={"target": TARGET_HELP, "json_": JSON_HELP})
def status(c, target=None, json_=False):
    """Target, bucket, data version, runs, model versions, endpoint, deployed versions, deploy history, lock."""
    from edge import lifecycle, ui

    with session(target) as project:
        info = lifecycle.status(project)
    if json_:
        ui.show_json(info)
        return
    ui.show(f"target   {info['target']} (project {info['project']}, {info['region']})")
    ui.show(f"bucket   {info['bucket']}")
    for name, m in info["models"].items():
        ui.show(f"model    {name}: {m['runs']} runs, versions {', '.join(m['versions']) or 'none'}")
        ui.show(f"  data     {m['data'] or f'none yet (invoke data.seed --model {name}, or data.add)'}")
        ui.show(f"  endpoint {m['endpoint'] or 'none'}")
        for d in m["deployed"]:
            ui.show(f"  deployed version {d['version']} ({d['deployed_model_id']}): {d['traffic']}% traffic")
        for record in m["deploys"][-5:]:
            ui.show(f"  deploy   {_describe_deploy(record)}")
    ui.show(f"lock     {info['lock'] or 'free'}")


def _describe_deploy(record: dict) -> str:
    import time

    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(record["when"]))
    forced = f", forced: {record['reason']}" if record.get("forced") else ""
    return f"{when} UTC version {record['version']} to {record['traffic']}% by {record['who']}{forced}"


@task(help={"target": TARGET_HELP, "yes": "do not ask", "wait": WAIT_HELP})
def destroy(c, target=None, yes=False, wait=0):
    """Remove this project's endpoints, models and bucket contents (gcp: also terraform destroy)."""
    from edge import lifecycle, ui

    with session(target) as project:
        question = f"destroy endpoints, models and gs://{project.config.bucket} contents on {project.target.name}?"
        if not yes and not ui.confirm(question):
            raise Exit("edge: nothing destroyed", code=1)
        with project.state.lock("destroy", float(wait)):
            done = lifecycle.destroy(project)
    for line in done:
        ui.show(line)


@task(name="force-unlock", help={"target": TARGET_HELP, "yes": "do not ask"})
def force_unlock(c, target=None, yes=False):
    """Remove a lock left by a command that died (asks first)."""
    from edge import ui

    with session(target) as project:
        holder = project.state.current_lock()
        if holder is None:
            ui.show("no lock held")
            return
        if not yes and not ui.confirm(f"remove the lock held by {holder.describe()}?"):
            raise Exit("edge: lock kept", code=1)
        if not project.state.force_unlock(holder):
            raise Exit("edge: the lock changed meanwhile (another command took it); nothing removed", code=1)
    ui.show(f"removed the lock held by {holder.describe()}")
