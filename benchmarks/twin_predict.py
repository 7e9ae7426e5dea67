"""Online prediction on the twin: latency and throughput, beside the in-process call of the same model.

    .venv/bin/python benchmarks/twin_predict.py [--requests 300] [--seconds 5]

Builds a small Keras MLP (784 -> 128 -> 10) as a SavedModel, starts a twin as a background process
(as `invoke twin.up` does), deploys the model with the Vertex SDK and measures:
  - p50/p99 latency of a 1-instance predict through the SDK and through raw HTTP (keep-alive);
  - throughput with 1, 4 and 16 concurrent raw-HTTP clients sending 1-instance requests;
  - the same model called in-process at batch 1 (and batch 16), the reference for the ratios.
Figures only: this machine is shared and noisy, so nothing here is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edge.target import twin_target  # noqa: E402
from edge.twin import process  # noqa: E402

SERVING_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-17:latest"


def build_model(directory: Path):
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((784,)),
            tf.keras.layers.Dense(128, activation="relu"),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.export(str(directory), verbose=False)
    signature = tf.saved_model.load(str(directory)).signatures["serving_default"]
    (name,) = signature.structured_input_signature[1]  # by keyword: a positional call is ~15x slower
    return lambda x: signature(**{name: x}), np.random.default_rng(0)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def in_process_rate(signature, batch: int, seconds: float) -> float:
    import tensorflow as tf

    x = tf.random.uniform([batch, 784], 0, 255)
    signature(x)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        signature(x)
        calls += 1
    return calls * batch / (time.perf_counter() - start)


def http_latencies(url: str, path: str, body: bytes, n: int) -> list[float]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    out = []
    for _ in range(n):
        start = time.perf_counter()
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        out.append(time.perf_counter() - start)
    return out


def throughput(url: str, path: str, body: bytes, clients: int, seconds: float) -> float:
    parts = urlsplit(url)
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port)
        while time.perf_counter() < stop:
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                counts[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per latency measurement")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "twin"
        signature, rng = build_model(Path(tmp) / "model")
        instance = [float(v) for v in rng.integers(0, 256, 784)]
        body = json.dumps({"instances": [instance]}).encode()
        info, _ = process.up(home)
        try:
            target = twin_target(info.env)
            client = target.storage_client()
            bucket = client.create_bucket("bench")
            for path in (Path(tmp) / "model").rglob("*"):
                if path.is_file():
                    bucket.blob(f"model/{path.relative_to(Path(tmp) / 'model')}").upload_from_filename(str(path))
            target.init_vertex()
            from google.cloud import aiplatform

            model = aiplatform.Model.upload(
                display_name="bench", artifact_uri="gs://bench/model", serving_container_image_uri=SERVING_IMAGE
            )
            endpoint = aiplatform.Endpoint.create(display_name="bench")
            endpoint.deploy(model, machine_type="n1-standard-2")
            predict_path = f"/v1/{endpoint.resource_name}:predict"

            endpoint.predict(instances=[instance])
            sdk = []
            for _ in range(args.requests):
                start = time.perf_counter()
                endpoint.predict(instances=[instance])
                sdk.append(time.perf_counter() - start)
            raw = http_latencies(info.vertex_url, predict_path, body, args.requests)
            rates = {c: throughput(info.vertex_url, predict_path, body, c, args.seconds) for c in (1, 4, 16)}
        finally:
            process.down(home)

    batch1 = in_process_rate(signature, 1, args.seconds)
    batch16 = in_process_rate(signature, 16, args.seconds)
    ms = 1000.0
    print(f"model: Keras MLP 784-128-10 SavedModel; {os.cpu_count()} cores")
    print(f"latency, 1 instance      p50       p99      (n={args.requests})")
    print(f"  SDK endpoint.predict   {statistics.median(sdk) * ms:6.2f} ms {percentile(sdk, 0.99) * ms:6.2f} ms")
    print(f"  raw HTTP               {statistics.median(raw) * ms:6.2f} ms {percentile(raw, 0.99) * ms:6.2f} ms")
    print(f"in-process, batch 1      {batch1:8.0f} predictions/s")
    print(f"in-process, batch 16     {batch16:8.0f} predictions/s")
    print("served throughput, 1-instance requests (ratio to in-process batch 1)")
    for clients, rate in rates.items():
        print(f"  {clients:2d} clients             {rate:8.0f} requests/s   {rate / batch1:5.2f}x")


if __name__ == "__main__":
    main()
