"""Runs in the bucket: run ids claimed without collisions, runs read back with one listing.

Run ids are Sacred's (1, 2, 3... per model): the next one after the highest id in the bucket. Two clones that
train at the same time see the same highest id, so an id is *claimed* before anything else of the run is
written: `experiments/<model>/<id>/claim.json` is created with `ifGenerationMatch=0`, which exactly one creator
wins (GCS and the twin answer 412 Precondition Failed to every other); a loser tries the next id. A folder
without run.json (a claim whose run never started, or an upload cut short) is not a run and is never listed.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone

from edge.errors import EdgeError

log = logging.getLogger(__name__)

RUNS_PREFIX = "experiments"
CLAIM = "claim.json"
RUN_FILES = ("run.json", "config.json", "info.json", "metrics.json")  # what a listing reads (not cout.txt)
MAX_CLAIM_ATTEMPTS = 100
READ_THREADS = 8
DEAD_AFTER_SECONDS = 300  # a RUNNING run without a heartbeat (Sacred beats every 10 s) for this long died


class ExperimentsError(EdgeError):
    """Experiment runs cannot be recorded or read; the message says what to do."""


def runs_prefix(model_name: str) -> str:
    """Where the runs of a model live in the bucket (no trailing slash)."""
    return f"{RUNS_PREFIX}/{model_name}"


def flatten(prefix: str, value) -> dict:
    """A nested dict as {"a.b.c": value}; `prefix` goes in front of every key."""
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            out.update(flatten(f"{prefix}.{key}" if prefix else str(key), inner))
        return out
    return {prefix: value}


def run_ids(bucket, prefix: str) -> list[int]:
    """Every id with a folder under `prefix` (claimed, running or done), from one delimited listing."""
    listing = bucket.list_blobs(prefix=f"{prefix}/", delimiter="/")
    for _ in listing.pages:  # the folder names arrive with the pages
        pass
    names = (p[len(prefix) + 1 :].rstrip("/") for p in listing.prefixes)
    return sorted(int(name) for name in names if name.isdigit())


def claim_run_id(bucket, prefix: str, claimant: str, origin: str | None = None) -> int:
    """A new run id under `prefix`, taken atomically (see the module docstring). `claimant` (user@host) and
    `origin` (for uploads of local runs) are recorded in the claim."""
    from google.api_core.exceptions import PreconditionFailed

    ids = run_ids(bucket, prefix)
    candidate = (ids[-1] if ids else 0) + 1
    record = {"who": claimant, "claimed": time.time(), **({"origin": origin} if origin else {})}
    for _ in range(MAX_CLAIM_ATTEMPTS):
        try:
            bucket.blob(f"{prefix}/{candidate}/{CLAIM}").upload_from_string(
                json.dumps(record), content_type="application/json", if_generation_match=0
            )
            return candidate
        except PreconditionFailed:
            log.debug("run id %s under %s was taken meanwhile; trying the next", candidate, prefix)
            candidate += 1
    raise ExperimentsError(
        f"could not claim a run id under gs://{bucket.name}/{prefix}/ after {MAX_CLAIM_ATTEMPTS} tries; "
        "many runs are starting at once: try again"
    )


def read_runs(bucket, prefix: str, ids: set[int] | None = None) -> list[dict]:
    """The runs under `prefix` (all, or those in `ids`), oldest first, each as {id, status, start, stop, host,
    who, dirty, config, info, result, metrics}. One listing, then the small JSON objects in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    files: dict[int, set[str]] = {}
    for blob in bucket.list_blobs(prefix=f"{prefix}/", fields="items(name),nextPageToken"):
        folder, _, name = blob.name[len(prefix) + 1 :].partition("/")
        if folder.isdigit() and name in RUN_FILES:
            files.setdefault(int(folder), set()).add(name)
    wanted = sorted(i for i, names in files.items() if "run.json" in names and (ids is None or i in ids))
    objects = [(i, name) for i in wanted for name in sorted(files[i])]
    with ThreadPoolExecutor(READ_THREADS) as pool:
        loaded = dict(zip(objects, pool.map(lambda o: _load(bucket, f"{prefix}/{o[0]}/{o[1]}"), objects), strict=True))
    return [_run(i, {name: loaded.get((i, name), {}) for name in RUN_FILES}) for i in wanted]


def _load(bucket, name: str) -> dict:
    from google.api_core.exceptions import NotFound

    try:
        value = json.loads(bucket.blob(name).download_as_bytes())
    except NotFound:  # removed between the listing and the read
        return {}
    except ValueError:
        log.warning("gs://%s/%s is not valid JSON; shown as empty", bucket.name, name)
        return {}
    return value if isinstance(value, dict) else {}


def _run(run_id: int, files: dict[str, dict]) -> dict:
    run, info = files["run.json"], files["info.json"]
    host = (run.get("host") or {}).get("hostname")
    return {
        "id": run_id,
        "status": _status(run),
        "start": run.get("start_time"),
        "stop": run.get("stop_time"),
        "host": host,
        "who": info.get("who") or host,
        "dirty": bool(info.get("git_dirty")),
        "config": files["config.json"],
        "info": info,
        "result": run.get("result") if isinstance(run.get("result"), dict) else {},
        "metrics": files["metrics.json"],
    }


def _status(run: dict) -> str | None:
    """Sacred's status, except that a RUNNING run whose heartbeat stopped long ago is PROBABLY_DEAD (as
    Omniboard says): its process was killed before Sacred could record the end."""
    status = run.get("status")
    beat = run.get("heartbeat") or run.get("start_time")
    if status != "RUNNING" or not beat:
        return status
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # Sacred writes naive UTC times
    try:
        silent = (now - datetime.fromisoformat(beat)).total_seconds()
    except ValueError:
        return status
    return "PROBABLY_DEAD" if silent > DEAD_AFTER_SECONDS else status
