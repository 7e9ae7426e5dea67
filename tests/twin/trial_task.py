"""A hyperparameter tuning trial for the twin's tests: reports `score` for its parameters as cloudml-hypertune does.

    python trial_task.py [--x=FLOAT] [--units=INT] [--optimizer=NAME] [--sleep SECONDS] [--fail]

score = 10 - (x - 3)^2 + units / 100 (+ 0.5 for optimizer "adam"), reported three times: at step 1 as score + 0.1,
at step 2 as score + 0.3 (the best), at step 3 as score (the last). Prints its environment's trial variables.
Standard library only.
"""

import argparse
import json
import os
import time

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, default=0.0)
parser.add_argument("--units", type=int, default=0)
parser.add_argument("--optimizer", default="sgd")
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--fail", action="store_true")
args = parser.parse_args()
for key in ("CLOUD_ML_TRIAL_ID", "AIP_MODEL_DIR", "CLUSTER_SPEC"):
    print(f"{key}={os.environ.get(key)}", flush=True)
time.sleep(args.sleep)
if args.fail:
    raise SystemExit("trial: asked to fail")
score = 10 - (args.x - 3) ** 2 + args.units / 100 + (0.5 if args.optimizer == "adam" else 0.0)
path = os.environ.get("CLOUD_ML_HP_METRIC_FILE", "/tmp/hypertune/output.metrics")
os.makedirs(os.path.dirname(path), exist_ok=True)
entries = []
for step, value in ((1, score + 0.1), (2, score + 0.3), (3, score)):
    entries.append({"global_step": str(step), "score": str(value), "timestamp": time.time(), "trial": "t"})
    with open(path, "w") as out:
        out.writelines(json.dumps(e, sort_keys=True) + "\n" for e in entries)
print(f"score={score}", flush=True)
