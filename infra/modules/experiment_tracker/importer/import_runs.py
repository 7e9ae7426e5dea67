#!/usr/bin/env python3
"""Copies the Sacred runs edge keeps in gs://BUCKET/experiments/ into MongoDB, in the layout Sacred's
MongoObserver writes (collections `runs` and `metrics`), so that Omniboard shows them. Runs on the tracker VM
(a systemd timer, every minute), with the VM's service account, which may only read `experiments/`.

Training machines never talk to MongoDB: they write runs to the bucket (edge/experiments/), and this importer
is the only writer of the database. One pass: one listing of the prefix, then only the runs that are new or
changed since the last pass are read and written. Idempotent: each imported document keeps its source folder
and the generations of its files (`edge.source`, `edge.signature`); a run whose files did not change is not
touched, a run that changed (it was RUNNING at the last pass) is rewritten under the same `_id`. Mongo ids are
allocated here (max + 1), since each model's runs are numbered from 1 in the bucket; the bucket's id is kept
in `info.edge_run` (`<model>/<id>`).

    python import_runs.py --bucket my-bucket --mongo-uri-file /run/edge/omniboard-uri

Needs google-cloud-storage and pymongo (requirements.txt next to this file); nothing of edge.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime

log = logging.getLogger("edge.importer")

RUN_FILES = ("run.json", "config.json", "info.json", "metrics.json", "cout.txt")
MONGO_FORMAT = "MongoObserver-0.7.0"  # what Sacred's MongoObserver writes and Omniboard reads
TIME_FIELDS = ("start_time", "heartbeat", "stop_time")


def scan(bucket, prefix: str) -> dict[str, dict[str, int]]:
    """{"experiments/<model>/<id>": {file name: generation}} for every run folder under `prefix` (one listing)."""
    folders: dict[str, dict[str, int]] = {}
    for blob in bucket.list_blobs(prefix=prefix, fields="items(name,generation),nextPageToken"):
        parts = blob.name[len(prefix) :].split("/")
        if len(parts) == 3 and parts[1].isdigit() and parts[2] in RUN_FILES:
            folders.setdefault(f"{prefix}{parts[0]}/{parts[1]}", {})[parts[2]] = int(blob.generation)
    return {folder: files for folder, files in folders.items() if "run.json" in files}


def signature(files: dict[str, int]) -> str:
    return ",".join(f"{name}:{files[name]}" for name in sorted(files))


def import_runs(bucket, db, prefix: str = "experiments/") -> dict[str, int]:
    """One pass: new runs inserted, changed runs rewritten, the rest untouched. Returns the counts."""
    prefix = prefix.rstrip("/") + "/"
    known = {doc["edge"]["source"]: doc for doc in db.runs.find({"edge.source": {"$exists": True}}, {"edge": 1})}
    counts = {"imported": 0, "updated": 0, "unchanged": 0}
    for source, files in sorted(scan(bucket, prefix).items(), key=lambda item: _order(item[0])):
        previous = known.get(source)
        if previous is not None and previous["edge"]["signature"] == signature(files):
            counts["unchanged"] += 1
            continue
        run_id = previous["_id"] if previous is not None else _next_id(db)
        document, metrics = _document(bucket, source, files, run_id)
        db.metrics.delete_many({"run_id": run_id})
        if metrics:
            db.metrics.insert_many(metrics)
        db.runs.replace_one({"_id": run_id}, document, upsert=True)
        counts["updated" if previous is not None else "imported"] += 1
        log.info("%s gs://%s/%s as run %s", "updated" if previous else "imported", bucket.name, source, run_id)
    return counts


def _order(source: str) -> tuple[str, int]:
    model, run = source.rsplit("/", 2)[-2:]
    return model, int(run)


def _next_id(db) -> int:
    last = list(db.runs.find({}, {"_id": 1}).sort("_id", -1).limit(1))
    return int(last[0]["_id"]) + 1 if last else 1


def _read(bucket, name: str):
    data = bucket.blob(name).download_as_bytes()
    return data.decode("utf-8", "replace") if name.endswith(".txt") else json.loads(data)


def _document(bucket, source: str, files: dict[str, int], run_id: int) -> tuple[dict, list[dict]]:
    """The run as Sacred's MongoObserver would have stored it, and its metrics documents."""
    from bson import ObjectId

    loaded = {name: _read(bucket, f"{source}/{name}") for name in files}
    run = loaded["run.json"]
    metrics = [
        {
            "_id": ObjectId(),
            "name": name,
            "run_id": run_id,
            "steps": series.get("steps", []),
            "values": series.get("values", []),
            "timestamps": [_time(t) for t in series.get("timestamps", [])],
        }
        for name, series in (loaded.get("metrics.json") or {}).items()
    ]
    model, number = source.rsplit("/", 2)[-2:]
    info = {**(loaded.get("info.json") or {}), "edge_run": f"{model}/{number}"}
    info["metrics"] = [{"name": m["name"], "id": str(m["_id"])} for m in metrics]
    document = {
        "_id": run_id,
        "experiment": {**(run.get("experiment") or {}), "sources": []},  # no GridFS copies: the git commit is in info
        "format": MONGO_FORMAT,
        "command": run.get("command"),
        "host": run.get("host") or {},
        "meta": run.get("meta") or {},
        "status": run.get("status"),
        "result": run.get("result"),
        "config": loaded.get("config.json") or {},
        "info": info,
        "captured_out": loaded.get("cout.txt", ""),
        "resources": [],
        "artifacts": [],
        "edge": {"source": source, "signature": signature(files)},
    }
    document.update({key: _time(run[key]) for key in TIME_FIELDS if run.get(key)})
    if run.get("fail_trace"):
        document["fail_trace"] = run["fail_trace"]
    return _bson_safe(document), metrics


def _time(value):
    """Sacred's ISO times (naive UTC) as datetimes, which Omniboard sorts and shows."""
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _bson_safe(value):
    """Keys MongoDB refuses ('$' first, '.' anywhere) rewritten the way Sacred's MongoObserver does."""
    if isinstance(value, dict):
        return {_key(k): _bson_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_bson_safe(v) for v in value]
    return value


def _key(key) -> str:
    key = str(key)
    if key.startswith("$"):
        key = "@" + key[1:]
    return key.replace(".", ",")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True, help="the project bucket (no gs://)")
    parser.add_argument("--prefix", default="experiments/", help="where edge keeps the runs (default experiments/)")
    uri = parser.add_mutually_exclusive_group(required=True)
    uri.add_argument("--mongo-uri", help="MongoDB connection string with the database (.../sacred?authSource=...)")
    uri.add_argument("--mongo-uri-file", help="a file holding the connection string (kept out of the process list)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)

    import pymongo
    from google.cloud import storage

    mongo_uri = args.mongo_uri or open(args.mongo_uri_file).read().strip()
    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=10_000)
    try:
        counts = import_runs(storage.Client().bucket(args.bucket), client.get_default_database("sacred"), args.prefix)
    finally:
        client.close()
    print(f"{counts['imported']} runs imported, {counts['updated']} updated, {counts['unchanged']} unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
