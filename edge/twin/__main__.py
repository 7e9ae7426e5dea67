"""`python -m edge.twin --home DIR`: run the twin in the foreground until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

from edge.twin.twin import Twin


def _start(home: Path, ports: dict[str, int]) -> Twin:
    """Prefers the ports of the last run, so exported variables stay valid; otherwise picks free ones."""
    try:
        return Twin(
            home, ports.get("storage", 0), ports.get("vertex", 0), bigquery_port=ports.get("bigquery", 0)
        ).start()
    except OSError:
        return Twin(home).start()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m edge.twin", description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="state directory (.edge/twin)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    info_path = args.home / "twin.json"
    last = json.loads(info_path.read_text()) if info_path.exists() else {}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    twin = _start(args.home, last.get("ports", {}))
    try:
        info = {
            "pid": os.getpid(),
            "startedAt": time.time(),
            "ports": twin.ports,
            "env": twin.env,
            "project": twin.project,
            "location": twin.location,
        }
        tmp = info_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=1))
        os.replace(tmp, info_path)
        while not stop.wait(1):
            pass
    finally:
        logging.info("twin stopping")
        twin.stop()


if __name__ == "__main__":
    main()
