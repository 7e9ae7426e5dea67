"""Online prediction on the twin, before and after the one-HTTP-layer change, beside the in-process model.

    .venv/bin/python benchmarks/twin_predict.py [--requests 300] [--seconds 5] [--before 78b8f54] [--rows 10000]

Trains the Fashion-MNIST CNN (models/fashion/trainer: `build_model` with params.yaml's
architecture, one epoch on --rows rows of Debian's dataset-fashion-mnist or data/) and saves
its serving SavedModel. Then, for each twin, the one of git commit --before (checked out with
`git worktree add` into a temporary directory) and the one of this checkout: starts its
process (`python -m edge.twin --home ...` from that tree), deploys the SavedModel with the
Vertex SDK and measures, with a 1-instance request (a real test image):
  - p50/p99 latency through the SDK (`endpoint.predict`) and through raw HTTP (keep-alive);
  - requests/s with 1, 4, 16 and 64 concurrent raw-HTTP keep-alive clients, and the longest
    request at each;
and the ratio of each rate to the same SavedModel called in-process at batch 1.
With wrk on PATH (Debian's `wrk`), the same rates again with the load from wrk, whose C client leaves
the two cores to the twin. Figures only: this machine is shared and noisy, so nothing here is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "models" / "fashion" / "trainer"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SERVING_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
DATASETS = (Path("/usr/share/datasets/fashion-mnist"), ROOT / "data")
CLIENTS = (1, 4, 16, 64)
PROJECT, LOCATION = "edge-twin", "us-central1"


# ---------------------------------------------------------------- the model


def _idx(name: str):
    import numpy as np

    for folder in DATASETS:
        path = folder / name
        if path.exists():
            raw = gzip.decompress(path.read_bytes())
            offset = 16 if "images" in name else 8
            return np.frombuffer(raw, dtype=np.uint8, offset=offset)
    raise SystemExit(f"{name} not found in {', '.join(map(str, DATASETS))}: apt-get install dataset-fashion-mnist")


def train_fashion_model(directory: Path, rows: int) -> list[float]:
    """Trains the fashion CNN for one epoch on `rows` rows, saves its serving SavedModel; a test image."""
    import keras
    import yaml

    from fashion_trainer.model import build_model, save_serving_model
    from fashion_trainer.params import TrainParams

    settings = yaml.safe_load((ROOT / "models/fashion/params.yaml").read_text())["train"]
    params = TrainParams(**{**settings, "epochs": 1, "train_limit": rows})
    keras.utils.set_random_seed(params.seed)
    x = _idx("train-images-idx3-ubyte.gz").reshape(-1, 784)[:rows].astype("float32")
    y = _idx("train-labels-idx1-ubyte.gz")[:rows].astype("int64")
    model = build_model(params)
    model.fit(x, y, epochs=1, batch_size=params.batch_size, verbose=0)
    save_serving_model(model, directory)
    return [int(v) for v in _idx("t10k-images-idx3-ubyte.gz")[:784]]


def in_process_rate(model_dir: Path, batch: int, seconds: float) -> float:
    """Predictions/s of the SavedModel's serving signature called in this process."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    x = tf.random.uniform([batch, 784], 0, 255)
    signature(pixels=x)  # by keyword: a positional call is ~15x slower
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        signature(pixels=x)
        calls += 1
    return calls * batch / (time.perf_counter() - start)


# ---------------------------------------------------------------- a twin of some tree


@contextlib.contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """The tree of `commit`, checked out into a temporary directory (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="edge-before-") as scratch:
        path = Path(scratch) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), commit], cwd=ROOT, check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


def _healthy(env: dict) -> bool:
    try:
        for url in (env["EDGE_VERTEX_API_ENDPOINT"], env["STORAGE_EMULATOR_HOST"]):
            urllib.request.urlopen(url + "/_twin/health", timeout=2).read()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def twin_of(tree: Path, home: Path) -> Iterator[dict]:
    """The twin process of `tree` (run from it, with the same venv) on `home`; its client env."""
    home.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with (home / "twin.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge.twin", "--home", str(home)],
            cwd=tree,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            info = json.loads((home / "twin.json").read_text()) if (home / "twin.json").exists() else {}
            if info.get("pid") == proc.pid and _healthy(info["env"]):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the twin of {tree} did not start; see {home / 'twin.log'}")
            time.sleep(0.1)
        yield info["env"]
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def deploy(env: dict, model_dir: Path):
    """Uploads the SavedModel to the twin's storage, registers and deploys it with the SDK; the endpoint."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform, storage

    client = storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": env["STORAGE_EMULATOR_HOST"]},
    )
    bucket = client.create_bucket("bench")
    for path in model_dir.rglob("*"):
        if path.is_file():
            bucket.blob(f"model/{path.relative_to(model_dir)}").upload_from_filename(str(path))
    aiplatform.init(
        project=PROJECT,
        location=LOCATION,
        api_endpoint=env["EDGE_VERTEX_API_ENDPOINT"],
        api_transport="rest",
        credentials=AnonymousCredentials(),
    )
    model = aiplatform.Model.upload(
        display_name="fashion", artifact_uri="gs://bench/model", serving_container_image_uri=SERVING_IMAGE
    )
    endpoint = aiplatform.Endpoint.create(display_name="fashion")
    endpoint.deploy(model, machine_type="n1-standard-2")
    return endpoint


# ---------------------------------------------------------------- measurements


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def sdk_latencies(endpoint, instance: list, n: int) -> list[float]:
    endpoint.predict(instances=[instance])
    out = []
    for _ in range(n):
        start = time.perf_counter()
        endpoint.predict(instances=[instance])
        out.append(time.perf_counter() - start)
    return out


def _post(connection: http.client.HTTPConnection, path: str, body: bytes) -> None:
    connection.request("POST", path, body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"predict answered {response.status}")


def http_latencies(port: int, path: str, body: bytes, n: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    _post(connection, path, body)
    out = []
    for _ in range(n):
        start = time.perf_counter()
        _post(connection, path, body)
        out.append(time.perf_counter() - start)
    return out


def throughput(port: int, path: str, body: bytes, clients: int, seconds: float) -> tuple[float, float, int]:
    """Requests/s of `clients` keep-alive clients for `seconds`, the longest request (s), and failed requests."""
    latencies: list[float] = []
    failures = [0]
    stop = time.perf_counter() + seconds
    barrier = threading.Barrier(clients)

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        barrier.wait()
        while time.perf_counter() < stop:
            start = time.perf_counter()
            try:
                _post(connection, path, body)
            except (OSError, http.client.HTTPException, RuntimeError):
                failures[0] += 1
                connection.close()  # a new connection for the next request
                continue
            mine.append(time.perf_counter() - start)
        latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.perf_counter() - start), max(latencies, default=0.0), failures[0]


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open(os.getenv("EDGE_WRK_BODY"), "rb"):read("*a")
"""


def _seconds(text: str) -> float:
    """wrk's durations (850.00us, 12.3ms, 1.2s) in seconds."""
    for suffix, scale in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    raise ValueError(text)


def wrk_throughput(port: int, path: str, body: bytes, clients: int, seconds: float) -> tuple[float, float, int]:
    """The same as `throughput`, with the load from wrk (C, two threads: the client costs next to no CPU, so the
    figure is the twin's capacity rather than Python clients' and the twin's together)."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "post.lua").write_text(WRK_SCRIPT)
        (Path(tmp) / "body.json").write_bytes(body)
        script, url = str(Path(tmp) / "post.lua"), f"http://127.0.0.1:{port}{path}"
        out = subprocess.run(
            ["wrk", f"-t{min(2, clients)}", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "60s", "-s", script, url],
            capture_output=True,
            text=True,
            env={**os.environ, "EDGE_WRK_BODY": str(Path(tmp) / "body.json")},
            check=True,
        ).stdout
    rate = float(out.split("Requests/sec:")[1].split()[0])
    latency = next(line.split() for line in out.splitlines() if line.strip().startswith("Latency"))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(re.search(r"Non-2xx or 3xx responses: (\d+)", out).group(1)) if "Non-2xx" in out else 0
    return rate, _seconds(latency[3]), errors


def measure(tree: Path, home: Path, model_dir: Path, instance: list, args: argparse.Namespace) -> dict:
    with twin_of(tree, home) as env:
        endpoint = deploy(env, model_dir)
        port = int(env["EDGE_VERTEX_API_ENDPOINT"].rsplit(":", 1)[1])
        path = f"/v1/{endpoint.resource_name}:predict"
        body = json.dumps({"instances": [instance]}).encode()
        result = {"sdk": sdk_latencies(endpoint, instance, args.requests)}
        result["http"] = http_latencies(port, path, body, args.requests)
        throughput(port, path, body, 16, 1.0)  # warm-up: connections, threads, batches
        result["rates"] = {c: throughput(port, path, body, c, args.seconds) for c in CLIENTS}
        if shutil.which("wrk"):
            result["wrk"] = {c: wrk_throughput(port, path, body, c, args.seconds) for c in CLIENTS}
        endpoint.undeploy_all()
    return result


def report(results: dict[str, dict], batch1: float, batch16: float, args: argparse.Namespace) -> None:
    names = list(results)
    ms = 1000.0
    print(
        f"model: the Fashion-MNIST CNN (params.yaml architecture, 1 epoch on {args.rows} rows); {os.cpu_count()} cores"
    )
    print(f"in-process batch 1: {batch1:.0f} predictions/s; batch 16: {batch16:.0f} predictions/s")
    print(f"{'':34}" + "".join(f"{name:>22}" for name in names))
    for label, key in (("SDK endpoint.predict", "sdk"), ("raw HTTP", "http")):
        for q in (0.5, 0.99):
            cells = "".join(f"{percentile(results[n][key], q) * ms:19.2f} ms" for n in names)
            print(f"{label + (' p50' if q == 0.5 else ' p99'):34}{cells}")
    for clients in CLIENTS:
        cells = "".join(
            f"{results[n]['rates'][clients][0]:9.0f}/s ({results[n]['rates'][clients][0] / batch1:4.2f}x)"
            for n in names
        )
        print(f"{f'{clients:2d} clients, req/s (x in-process)':34}{cells}")
    for clients in CLIENTS:
        cells = "".join(f"{results[n]['rates'][clients][1] * ms:19.1f} ms" for n in names)
        print(f"{f'{clients:2d} clients, longest request':34}{cells}")
    if all("wrk" in results[n] for n in names):
        for clients in CLIENTS:
            cells = "".join(
                f"{results[n]['wrk'][clients][0]:9.0f}/s ({results[n]['wrk'][clients][0] / batch1:4.2f}x)"
                for n in names
            )
            print(f"{f'{clients:2d} wrk connections, req/s':34}{cells}")
        for clients in CLIENTS:
            cells = "".join(f"{results[n]['wrk'][clients][1] * ms:19.1f} ms" for n in names)
            print(f"{f'{clients:2d} wrk connections, longest':34}{cells}")
    failures = {n: sum(r[2] for key in ("rates", "wrk") for r in results[n].get(key, {}).values()) for n in names}
    if any(failures.values()):
        print(f"{'failed requests (reset, refused)':34}" + "".join(f"{failures[n]:22d}" for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per latency measurement")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    parser.add_argument("--before", default="78b8f54", help="the commit whose twin is 'before'")
    parser.add_argument("--rows", type=int, default=10000, help="training rows for the one epoch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as scratch:
        model_dir = Path(scratch) / "model"
        instance = train_fashion_model(model_dir, args.rows)
        batch1 = in_process_rate(model_dir, 1, args.seconds)
        batch16 = in_process_rate(model_dir, 16, args.seconds)
        results = {}
        with worktree(args.before) as before:
            results[f"before ({args.before})"] = measure(before, Path(scratch) / "before", model_dir, instance, args)
        results["after (this tree)"] = measure(ROOT, Path(scratch) / "after", model_dir, instance, args)
    report(results, batch1, batch16, args)


if __name__ == "__main__":
    main()
