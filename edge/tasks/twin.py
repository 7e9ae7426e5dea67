"""The offline twin of Google Cloud (GCS, Vertex AI, BigQuery on 127.0.0.1): up, down, status, env, reset."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from invoke import Collection, Exit, task

from edge.twin import process

HOME_HELP = "state directory of the twin (default: $EDGE_HOME/twin, EDGE_HOME defaulting to .edge)"


def twin_home(home: str | None = None) -> Path:
    return Path(home) if home else Path(os.environ.get("EDGE_HOME", ".edge")) / "twin"


def _require(info):
    if info is None:
        raise Exit("The twin is not running: start it with `invoke twin.up`.", code=1) from None
    return info


@task(help={"home": HOME_HELP})
def up(c, home=None):
    """Start the twin in the background, or reuse the one that runs."""
    try:
        info, started = process.up(twin_home(home))
    except process.TwinProcessError as exc:
        raise Exit(str(exc), code=1) from None
    verb = "started" if started else "already running"
    print(f"twin {verb} (pid {info.pid}): storage {info.storage_url}, vertex {info.vertex_url}")
    print('point your own clients at it with: eval "$(invoke twin.env)"')


@task(help={"home": HOME_HELP})
def down(c, home=None):
    """Stop the twin and every job and model server it started; its data stays."""
    print("twin stopped" if process.down(twin_home(home)) else "twin was not running")


@task(help={"home": HOME_HELP, "json_": "print the raw status as JSON"})
def status(c, home=None, json_=False):
    """Ports, uptime, jobs, endpoints and deployed models of the running twin."""
    state = process.status(twin_home(home))
    if state is None:
        raise Exit("twin: not running (start it with `invoke twin.up`)", code=1) from None
    if json_:
        print(json.dumps(state, indent=2))
        return
    uptime = time.strftime("%H:%M:%S", time.gmtime(state["uptimeSeconds"]))
    print(f"twin: running, pid {state['pid']}, up {uptime}, project {state['project']}, {state['location']}")
    print(f"  storage  http://127.0.0.1:{state['ports']['storage']}")
    print(f"  vertex   http://127.0.0.1:{state['ports']['vertex']}")
    if "bigquery" in state["ports"]:
        print(f"  bigquery http://127.0.0.1:{state['ports']['bigquery']}")
    jobs = ", ".join(f"{n} {s.removeprefix('JOB_STATE_').lower()}" for s, n in sorted(state["jobs"].items()))
    print(f"  jobs     {jobs or 'none'}")
    print(f"  models   {state['models']}")
    print(f"  endpoints {len(state['endpoints']) or 'none'}")
    for endpoint in state["endpoints"]:
        print(f"    {endpoint['displayName']} ({endpoint['name']})")
        for deployed in endpoint["deployedModels"]:
            share = endpoint["trafficSplit"].get(deployed["id"], 0)
            serving = "serving" if deployed["serving"] else "loading"
            print(f"      {deployed['id']}  {deployed['model']}  {share}% traffic, {serving}")


@task(help={"home": HOME_HELP})
def env(c, home=None):
    """Print `export` lines that point google-cloud-storage, gcsfs/DVC, the Vertex SDK and google-cloud-bigquery
    at the twin."""
    print(process.export_lines(_require(process.running(twin_home(home)))))


@task(help={"home": HOME_HELP})
def reset(c, home=None):
    """Empty the running twin: buckets, registry, endpoints, jobs, logs, BigQuery datasets."""
    try:
        process.reset(twin_home(home))
    except process.TwinProcessError as exc:
        raise Exit(str(exc), code=1) from None
    print("twin reset: no buckets, models, endpoints or jobs")


ns = Collection("twin", up, down, status, env, reset)
