"""Drift monitoring on the twin: the calibration of edge.yaml's default thresholds, the shift simulation,
`invoke monitor`'s time on 10,000 logged requests, and what request-response logging costs predict.

    .venv/bin/python benchmarks/monitoring.py [--repo DIR] [--windows 20] [--size 500] [--shifted 3] [--seconds 6]
        [--repeats 5] [--only-logging]

--repo is a user repository whose fashion model is deployed on its twin (this checkout after `./edge.sh demo`,
say); without it, a fresh copy of this project is trained (params.yaml as it is) and deployed first (about 6
minutes). Real traffic goes through the endpoint (raw HTTP, one test image per request, 8 clients) and is
logged by the twin into its BigQuery; every comparison is edge's own `run_monitor`, as `invoke monitor` runs it:
  1. calibration: the held-out test split, shuffled, sent as --windows windows of --size requests without any
     shift: per feature, the largest distance over the windows against its threshold, and the windows that
     alerted (the target: none);
  2. simulation: --shifted windows of --size requests of each shift (inverted images, brightness x0.5, Gaussian
     noise, a single class, random pixels): whether each alerted, on which features;
  3. `invoke monitor` (a new process, as a user runs it) over the calibration's 10,000 logged requests;
  4. predict throughput at 16 clients (wrk when installed) with the endpoint's logging off and on, alternated
     --repeats times in the same run (the medians are compared).
Figures only: this machine is shared and noisy, so nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.monitoring import request_logging  # noqa: E402
from edge.monitoring.monitor import logged_table, run_monitor, served_models  # noqa: E402
from edge.monitoring.reference import ReferenceError, load_reference, store_reference  # noqa: E402
from edge.project import open_project  # noqa: E402

SCENARIOS = ("inverted", "brightness x0.5", "gaussian noise", "single class", "random pixels")
NOISE_SIGMA = 40.0  # of the Gaussian noise, on the 0..255 pixel scale
CLIENTS = 8
WRK_SCRIPT = """
local f = io.open(os.getenv("EDGE_WRK_BODY"), "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = "application/json"
f:close()
"""


def invoke(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "EDGE_HOME": str(repo / ".edge")},
    )
    if check and result.returncode != 0:
        sys.exit(f"invoke {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def fresh_repo(folder: Path) -> Path:
    from tests.support import copy_project

    repo = copy_project(folder)
    for step in ("init", "data.seed", "train", "deploy"):
        print(f"invoke {step} ...", flush=True)
        invoke(repo, step)
    return repo


def test_split(repo: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(repo / "data/prepared/fashion/test.npz") as data:
        return data["x"].reshape(len(data["x"]), 784).astype(np.int64), data["y"].astype(np.int64)


def post_all(url: str, images: np.ndarray) -> tuple[float, float]:
    """Sends each image as one predict request from CLIENTS keep-alive clients; the window's (start, end)."""
    local = threading.local()

    def post(image: np.ndarray) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        body = json.dumps({"instances": [image.tolist()]})
        response = local.session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=120)
        response.raise_for_status()

    start = time.time()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(post, images))
    return start, time.time() + 0.05


def wait_logged(client, table: str, window: tuple[float, float], count: int, timeout: float = 30) -> None:
    """Returns once `count` rows of the window are in the table (the twin writes them in the background)."""
    from google.cloud import bigquery

    since, until = (np_time(t) for t in window)
    sql = f"SELECT COUNT(*) AS n FROM `{table}` WHERE logging_time >= @since AND logging_time < @until"
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("since", "TIMESTAMP", since),
            bigquery.ScalarQueryParameter("until", "TIMESTAMP", until),
        ]
    )
    deadline = time.monotonic() + timeout
    while next(iter(client.query_and_wait(sql, job_config=config)))["n"] < count:
        if time.monotonic() > deadline:
            sys.exit(f"the window's {count} requests were not all logged within {timeout} s")
        time.sleep(0.1)


def np_time(seconds: float):
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


def iso(seconds: float) -> str:
    return np_time(seconds).isoformat()


def shifted(name: str, x: np.ndarray, y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` test images with the shift `name` applied (0..255 integers, as a client would send them)."""
    if name == "single class":
        return x[rng.choice(np.flatnonzero(y == 0), size, replace=False)]
    images = x[rng.choice(len(x), size, replace=False)].astype(np.float64)
    if name == "inverted":
        images = 255 - images
    elif name == "brightness x0.5":
        images = images * 0.5
    elif name == "gaussian noise":
        images = images + rng.normal(0, NOISE_SIGMA, images.shape)
    elif name == "random pixels":
        images = rng.integers(0, 256, images.shape).astype(np.float64)
    return np.rint(np.clip(images, 0, 255)).astype(np.int64)


def ensure_reference(project, model, endpoint, x: np.ndarray) -> None:
    """The deployed version's reference: the evaluate stage stores it; a version trained before it did gets one
    here, from the endpoint's own predictions on the test split (edge.monitoring.reference)."""
    deployed = endpoint.deployed_models[0]
    served = served_models(project, endpoint, [deployed.id])[deployed.id]
    try:
        load_reference(project.target.storage_client(), served.reference_uri)
        return
    except ReferenceError:
        pass
    url = project.target.predict_url(endpoint.name)
    predictions = []
    for i in range(0, len(x), 500):
        answer = requests.post(url, json={"instances": x[i : i + 500].tolist()}, timeout=300)
        answer.raise_for_status()
        predictions += answer.json()["predictions"]
    artifact = project.vertex().Model(served.version_name).uri
    print("reference:", store_reference(project.target.storage_client(), project.spec(model), artifact, x, predictions))


def distances(result: dict) -> dict[str, dict]:
    (version,) = result["versions"]
    return {row["feature"]: row for row in version["features"]}


def run_window(project, model, url, client, table, images) -> dict:
    window = post_all(url, images)
    wait_logged(client, table, window, len(images))
    return run_monitor(project, model, iso(window[0]), iso(window[1]))


def calibrate(project, model, url, client, table, x, args) -> tuple[list[dict], tuple[float, float]]:
    order = np.random.default_rng(1).permutation(len(x))[: args.windows * args.size]
    results, first = [], time.time()
    for k in range(args.windows):
        results.append(run_window(project, model, url, client, table, x[order[k * args.size : (k + 1) * args.size]]))
        print(f"  unshifted window {k + 1}/{args.windows}: {results[-1]['status']}", flush=True)
    return results, (first, time.time() + 0.05)


def simulate(project, model, url, client, table, x, y, args) -> dict[str, list[dict]]:
    rng = np.random.default_rng(2)
    found = {}
    for name in SCENARIOS:
        found[name] = [
            run_window(project, model, url, client, table, shifted(name, x, y, args.size, rng))
            for _ in range(args.shifted)
        ]
        print(f"  {name}: {[r['status'] for r in found[name]]}", flush=True)
    return found


def print_calibration(results: list[dict], args) -> None:
    rows = [distances(r) for r in results]
    alerts = sum(r["status"] == "drift" for r in results)
    print(f"\nCalibration: {args.windows} windows of {args.size} unshifted held-out test requests, {alerts} alerted")
    print("| feature | kind | threshold | largest distance | mean distance |")
    print("|---|---|---|---|---|")
    for feature, first in rows[0].items():
        values = [r[feature]["distance"] for r in rows]
        largest, mean = max(values), statistics.mean(values)
        print(f"| {feature} | {first['kind']} | {first['threshold']} | {largest:.4f} | {mean:.4f} |")


def print_simulation(found: dict[str, list[dict]], results: list[dict]) -> None:
    print("\n| scenario | windows that alerted | drifted features (in every window) | largest distance / threshold |")
    print("|---|---|---|---|")
    for name, runs in [("unshifted (calibration)", results), *found.items()]:
        per_window = [distances(r) for r in runs]
        common = set.intersection(*({f for f, row in d.items() if row["drifted"]} for d in per_window))
        ratio = max(row["distance"] / row["threshold"] for d in per_window for row in d.values() if row["threshold"])
        order = list(per_window[0])
        features = ", ".join(f for f in order if f in common) or "none"
        alerted = sum(r["status"] == "drift" for r in runs)
        print(f"| {name} | {alerted}/{len(runs)} | {features} | {ratio:.2f} |")


def time_cli(repo: Path, window: tuple[float, float], runs: int = 3) -> tuple[float, dict]:
    times, result = [], {}
    for _ in range(runs):
        start = time.perf_counter()
        done = invoke(repo, "monitor", "--since", iso(window[0]), "--until", iso(window[1]), "--json", check=False)
        times.append(time.perf_counter() - start)
        if done.returncode not in (0, 3):
            sys.exit(f"invoke monitor failed:\n{done.stdout}\n{done.stderr}")
        result = json.loads(done.stdout)
    return statistics.median(times), result


def rate(url: str, body: bytes, clients: int, seconds: float) -> float:
    """Requests/s at `clients` concurrent keep-alive clients: wrk's when installed, else Python threads'."""
    if shutil.which("wrk"):
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "post.lua").write_text(WRK_SCRIPT)
            (Path(tmp) / "body.json").write_bytes(body)
            out = subprocess.run(
                [
                    "wrk",
                    "-t2",
                    f"-c{clients}",
                    f"-d{seconds:g}s",
                    "--timeout",
                    "60s",
                    "-s",
                    str(Path(tmp) / "post.lua"),
                    url,
                ],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "EDGE_WRK_BODY": str(Path(tmp) / "body.json")},
            ).stdout
        if re.search(r"Non-2xx or 3xx responses: \d+", out):
            sys.exit(f"wrk saw failed requests:\n{out}")
        return float(out.split("Requests/sec:")[1].split()[0])
    done, stop = [0] * clients, threading.Event()

    def client(i: int) -> None:
        session = requests.Session()
        while not stop.is_set():
            session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60).raise_for_status()
            done[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


def logging_cost(project, model, endpoint, image: np.ndarray, seconds: float, repeats: int) -> dict[str, list[float]]:
    """Requests/s at 16 clients with the endpoint's logging off, then on, `repeats` times over (same run)."""
    url = project.target.predict_url(endpoint.name)
    body = json.dumps({"instances": [image.tolist()]}).encode()
    off = replace(model, monitoring=replace(model.monitoring, sampling_rate=0.0))
    rate(url, body, 16, 2)  # warm-up
    rates: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for _ in range(repeats):
            for state, config in (("off", off), ("on", model)):
                request_logging.ensure(project.vertex().Endpoint(endpoint.name), project.config.project, config)
                rates[state].append(rate(url, body, 16, seconds))
                print(f"  logging {state}: {rates[state][-1]:.0f} requests/s", flush=True)
    finally:
        request_logging.ensure(project.vertex().Endpoint(endpoint.name), project.config.project, model)
    return rates


def print_logging_cost(rates: dict[str, list[float]]) -> None:
    """The medians, and the median of the ratios of each (off, on) pair measured back to back: the machine's
    other load changes less within a pair than across the run."""
    off, on = statistics.median(rates["off"]), statistics.median(rates["on"])
    pairs = statistics.median(b / a for a, b in zip(rates["off"], rates["on"], strict=True))
    client_name = "wrk" if shutil.which("wrk") else "Python threads"
    print(f"\npredict at 16 clients ({client_name}), medians: logging off {off:.0f} / on {on:.0f} requests/s")
    print(f"  on / off: {on / off:.2f}x (medians), {pairs:.2f}x (median of the back-to-back pairs)")
    print(f"  off {', '.join(f'{r:.0f}' for r in rates['off'])}; on {', '.join(f'{r:.0f}' for r in rates['on'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, help="a user repository with the fashion model deployed on its twin")
    parser.add_argument("--windows", type=int, default=20, help="unshifted windows of the calibration")
    parser.add_argument("--size", type=int, default=500, help="requests per window")
    parser.add_argument("--shifted", type=int, default=3, help="windows per shift")
    parser.add_argument("--seconds", type=float, default=6, help="length of each throughput measurement")
    parser.add_argument("--repeats", type=int, default=5, help="throughput measurements with logging off, and on")
    parser.add_argument("--only-logging", action="store_true", help="measure logging's cost only (step 4)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = args.repo.resolve() if args.repo else fresh_repo(Path(tmp))
        os.environ["EDGE_HOME"] = str(repo / ".edge")
        project = open_project(repo)
        model = project.config.model("fashion")
        endpoint, table = logged_table(project, model)
        x, y = test_split(repo)
        if not args.only_logging:
            client, url = project.target.bigquery_client(), project.target.predict_url(endpoint.name)
            ensure_reference(project, model, endpoint, x)
            print("calibration ...", flush=True)
            results, window = calibrate(project, model, url, client, table, x, args)
            print("simulation ...", flush=True)
            found = simulate(project, model, url, client, table, x, y, args)
            print("invoke monitor over the calibration's requests ...", flush=True)
            seconds, cli = time_cli(repo, window)
        print("logging off / on ...", flush=True)
        rates = logging_cost(project, model, endpoint, x[0], args.seconds, args.repeats)
    if not args.only_logging:
        print_calibration(results, args)
        print_simulation(found, results)
        print(
            f"\n`invoke monitor` over {cli['instances']} logged requests ({cli['rows']} rows): {seconds:.1f} s (median)"
        )
    print_logging_cost(rates)


if __name__ == "__main__":
    main()
