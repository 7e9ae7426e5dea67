"""The replicas of a CustomJob: which worker pools run what, their cluster environment, their logs.

Vertex AI runs every replica of every worker pool on its own machine and tells each where the others are:

    CLUSTER_SPEC  {"cluster": {"workerpool0": ["host:port"], "workerpool1": [...]}, "environment": "cloud",
                   "task": {"type": "workerpool1", "index": 0[, "trial": "3"]}, "job": {<the CustomJobSpec>}}
    TF_CONFIG     the same in TensorFlow's terms: pool 0 is the `chief`, pool 1 `worker`, pool 2 `ps`, pool 3
                  `evaluator` (an evaluator is not part of the training cluster, so not under "cluster")

The twin runs each replica as a process of its own on 127.0.0.1, on free ports, with those variables. Empty pools
(`{}`, as the SDK sends for a pool it skips) have no replicas and no key in "cluster". A replica's output goes to
its own log and, prefixed with its name (`[workerpool1-0] ...`) when the job has several, to the job's log.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MAX_POOLS = 4
MAX_REPLICAS = 8  # every replica is a process on this one machine
TF_TASKS = ("chief", "worker", "ps", "evaluator")  # TF_CONFIG task type of worker pools 0..3, as Vertex sets it


@dataclass(frozen=True)
class Replica:
    pool: int
    index: int
    spec: dict  # the pool's pythonPackageSpec

    @property
    def name(self) -> str:
        return f"workerpool{self.pool}-{self.index}"


def replica_count(pool: dict) -> int:
    return int(pool.get("replicaCount", 1)) if pool else 0


def refusal(pools: list[dict]) -> str | None:
    """Why the twin cannot run a job with these worker pools (None if it can): Python packages on up to
    MAX_REPLICAS local replicas, pool 0 being the one chief."""
    if not pools or not pools[0]:
        return "The first worker pool (the primary replica) is required."
    if len(pools) > MAX_POOLS:
        return f"A job has at most {MAX_POOLS} worker pools (primary, workers, parameter servers, evaluators)."
    if replica_count(pools[0]) != 1:
        return f"Worker pool 0 is the primary replica: its replicaCount must be 1, not {replica_count(pools[0])}."
    replicas = sum(replica_count(p) for p in pools)
    if replicas > MAX_REPLICAS:
        return (
            f"The twin runs at most {MAX_REPLICAS} replicas, each a process on this machine; this job asks for "
            f"{replicas}. Use --target gcp for a larger cluster."
        )
    for pool in filter(None, pools):
        if "containerSpec" in pool:
            return (
                f"The twin cannot run container image {pool['containerSpec'].get('imageUri')!r}: "
                "there is no container engine. Run Python code on a prebuilt Vertex image instead "
                "(CustomJob.from_local_script, CustomTrainingJob or CustomPythonPackageTrainingJob)."
            )
        spec = pool.get("pythonPackageSpec")
        if not spec or not spec.get("pythonModule") or not spec.get("packageUris"):
            return "A worker pool has no pythonPackageSpec with python_module and package_uris."
    return None


def plan(pools: list[dict]) -> list[Replica]:
    """Every replica of every non-empty pool, chief first."""
    return [
        Replica(number, index, pool["pythonPackageSpec"])
        for number, pool in enumerate(pools)
        for index in range(replica_count(pool))
    ]


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1 (bound together, then released for the replicas)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def cluster_variables(
    replicas: list[Replica], ports: list[int], job_spec: dict, trial: str | None = None
) -> dict[str, dict[str, str]]:
    """Replica name -> its CLUSTER_SPEC and TF_CONFIG, in Vertex's formats, with addresses 127.0.0.1:port; `trial`
    is the hyperparameter tuning trial the job runs, if any."""
    addresses: dict[int, list[str]] = {}
    for replica, port in zip(replicas, ports, strict=True):
        addresses.setdefault(replica.pool, []).append(f"127.0.0.1:{port}")
    pools = {f"workerpool{pool}": hosts for pool, hosts in addresses.items()}
    tf_cluster = {TF_TASKS[pool]: hosts for pool, hosts in addresses.items() if TF_TASKS[pool] != "evaluator"}
    variables = {}
    for replica in replicas:
        task = {"index": replica.index, **({"trial": trial} if trial else {})}
        variables[replica.name] = {
            "CLUSTER_SPEC": json.dumps(
                {
                    "cluster": pools,
                    "environment": "cloud",
                    "task": {"type": f"workerpool{replica.pool}", **task},
                    "job": job_spec,
                }
            ),
            "TF_CONFIG": json.dumps(
                {
                    "cluster": tf_cluster,
                    "environment": "cloud",
                    "task": {"type": TF_TASKS[replica.pool], **task},
                    "job": job_spec,
                }
            ),
        }
    return variables


class LogRelay:
    """Copies each replica's output, line by line, to its own log and to the job's log (prefixed with the
    replica's name when `prefixed`)."""

    def __init__(self, job_log: Path, replica_logs: Path, prefixed: bool):
        self.replica_logs = replica_logs
        self.prefixed = prefixed
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        replica_logs.mkdir(parents=True, exist_ok=True)
        self.job_log = job_log.open("ab")

    def follow(self, name: str, stream: IO[bytes]) -> None:
        thread = threading.Thread(target=self._copy, args=(name, stream), name=f"log-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _copy(self, name: str, stream: IO[bytes]) -> None:
        prefix = f"[{name}] ".encode() if self.prefixed else b""
        with stream, (self.replica_logs / f"{name}.log").open("ab") as own:
            for line in iter(stream.readline, b""):
                own.write(line)
                own.flush()
                with self.lock:
                    if not self.job_log.closed:  # a stray child may outlive the job
                        self.job_log.write(prefix + line)
                        self.job_log.flush()

    def close(self, timeout: float = 5.0) -> None:
        """Waits for the replicas' last lines (a replica's stray child holding the pipe is not waited for)."""
        for thread in self.threads:
            thread.join(timeout)
        with self.lock:
            self.job_log.close()
