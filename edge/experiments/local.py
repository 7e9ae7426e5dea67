"""Runs a clone recorded before runs lived in the bucket (Sacred's file store, `.edge/experiments/<model>/<id>/`),
put into the bucket once each.

A local run gets a new id in the bucket, claimed like any run (the local ids of two clones overlap). It is
known by a digest of its model and its run.json (host, start time, result...), so the same run uploaded from
two copies of a `.edge/` folder is still one run in the bucket:

1. claim an id (the claim records the digest), upload config.json, info.json, metrics.json, cout.txt;
2. create `_origins/<digest>.json` = {"run": id} with ifGenerationMatch=0; losing that race means the same run
   was just uploaded by another command, so this copy is removed;
3. upload run.json: only now is the run listed;
4. mark the local folder (`uploaded.json`, with the bucket's name), so later calls do not even list the bucket.

A second call uploads nothing; an upload cut short after step 2 is finished by the next call.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from edge.experiments.provenance import who
from edge.experiments.store import claim_run_id

log = logging.getLogger(__name__)

ORIGINS = "_origins"
UPLOADED_MARK = "uploaded.json"
FILES = ("config.json", "info.json", "metrics.json", "cout.txt")


def upload_local_runs(bucket, folder: Path, prefix: str) -> list[tuple[int, int]]:
    """Uploads the runs of `folder` not yet in `bucket` under `prefix`; (local id, bucket id) of each one uploaded."""
    pending = [run_dir for run_dir in _local_runs(folder) if not _marked(run_dir, bucket.name)]
    if not pending:
        return []
    known = {
        blob.name.rsplit("/", 1)[-1].removesuffix(".json") for blob in bucket.list_blobs(prefix=_origin(prefix, ""))
    }
    uploaded = []
    for run_dir in pending:
        digest = _digest(folder.name, run_dir)
        run_id = _finish(bucket, prefix, run_dir, digest) if digest in known else None
        if run_id is None:
            run_id = _upload(bucket, prefix, run_dir, digest)
            uploaded.append((int(run_dir.name), run_id))
            log.debug("uploaded run %s of %s as gs://%s/%s/%s", run_dir.name, folder, bucket.name, prefix, run_id)
        (run_dir / UPLOADED_MARK).write_text(json.dumps({"bucket": bucket.name, "run": run_id}) + "\n")
    return uploaded


def _local_runs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    runs = [p for p in folder.iterdir() if p.name.isdigit() and (p / "run.json").is_file()]
    return sorted(runs, key=lambda p: int(p.name))


def _marked(run_dir: Path, bucket_name: str) -> bool:
    try:
        return json.loads((run_dir / UPLOADED_MARK).read_text()).get("bucket") == bucket_name
    except (OSError, ValueError, AttributeError):
        return False


def _digest(model: str, run_dir: Path) -> str:
    return hashlib.sha256(model.encode() + b"\0" + (run_dir / "run.json").read_bytes()).hexdigest()[:32]


def _origin(prefix: str, digest: str) -> str:
    return f"{prefix}/{ORIGINS}/{digest}.json" if digest else f"{prefix}/{ORIGINS}/"


def _put(bucket, folder: str, run_dir: Path, names) -> None:
    for name in names:
        path = run_dir / name
        if path.is_file():
            content_type = "text/plain" if name.endswith(".txt") else "application/json"
            bucket.blob(f"{folder}/{name}").upload_from_filename(str(path), content_type=content_type)


def _upload(bucket, prefix: str, run_dir: Path, digest: str) -> int:
    from google.api_core.exceptions import PreconditionFailed

    run_id = claim_run_id(bucket, prefix, who(), origin=digest)
    _put(bucket, f"{prefix}/{run_id}", run_dir, FILES)
    try:
        bucket.blob(_origin(prefix, digest)).upload_from_string(
            json.dumps({"run": run_id, "from": f"{who()}:{run_dir}"}),
            content_type="application/json",
            if_generation_match=0,
        )
    except PreconditionFailed:  # the same run, uploaded by another command just now: keep theirs
        for blob in bucket.list_blobs(prefix=f"{prefix}/{run_id}/"):
            blob.delete()
        return _finish(bucket, prefix, run_dir, digest)
    _put(bucket, f"{prefix}/{run_id}", run_dir, ["run.json"])
    return run_id


def _finish(bucket, prefix: str, run_dir: Path, digest: str) -> int:
    """The bucket id of a run already uploaded; completes it if its upload was cut short."""
    run_id = int(json.loads(bucket.blob(_origin(prefix, digest)).download_as_bytes())["run"])
    if not bucket.blob(f"{prefix}/{run_id}/run.json").exists():
        _put(bucket, f"{prefix}/{run_id}", run_dir, [*FILES, "run.json"])
    return run_id
