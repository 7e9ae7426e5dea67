"""`python -m fashion_web [--root DIR] [--target T] [--host H] [--port P]`: what the container runs.

The port defaults to $PORT (Cloud Run sets it), else 8080; the target to $EDGE_TARGET, else edge.yaml's.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fashion_web.server import DEFAULT_PORT, serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="fashion_web", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="the edge project (holds edge.yaml)")
    parser.add_argument("--target", default=None, help="twin or gcp (default: $EDGE_TARGET, else edge.yaml's)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (the container passes 0.0.0.0)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)), help="port to bind")
    args = parser.parse_args()
    serve(args.root, args.target, args.host, args.port)


if __name__ == "__main__":
    main()
