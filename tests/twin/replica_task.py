"""A replica of a test job: prints its CLUSTER_SPEC and TF_CONFIG, then fails or sleeps if told to (per task type).

    python replica_task.py [--fail TYPE] [--sleep SECONDS] [--sleep-type TYPE]

TYPE is the replica's CLUSTER_SPEC task type (workerpool0, workerpool1...); --sleep without --sleep-type applies
to every replica. Standard library only: the twin starts it quickly.
"""

import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--fail", help="exit 3 if this replica's task type is this")
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--sleep-type", help="sleep only if this replica's task type is this")
args = parser.parse_args()
print("CLUSTER_SPEC " + os.environ["CLUSTER_SPEC"], flush=True)
print("TF_CONFIG " + os.environ["TF_CONFIG"], flush=True)
kind = json.loads(os.environ["CLUSTER_SPEC"])["task"]["type"]
if args.fail == kind:
    print(f"replica {kind}: asked to fail", file=sys.stderr, flush=True)
    raise SystemExit(3)
if args.sleep and args.sleep_type in (None, kind):
    print(f"replica {kind}: sleeping", flush=True)
    time.sleep(args.sleep)
print(f"replica {kind}: done", flush=True)
