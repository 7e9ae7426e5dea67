"""What every stage of a model's DVC pipeline shares (`python -m edge.<part>.stage --model NAME`): the command
line, one-line errors, and a target that dies mid-stage turned into one line instead of the clients' retries."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from edge.errors import EdgeError
from edge.project import Project


@contextmanager
def watched(project: Project) -> Iterator[None]:
    """Runs the block under `Target.watch()`; the twin dying mid-block becomes an EdgeError that says what to do."""
    with project.target.watch():
        try:
            yield
        except KeyboardInterrupt:
            lost = project.target.lost()
            if lost:
                raise EdgeError(f"{lost}: start it again with `invoke twin.up`, then run the command again") from None
            raise


def stage_main(prog: str, doc: str, log: logging.Logger, work: Callable[[str], str], argv: list[str] | None) -> None:
    """Parses `--model`, runs `work(model)` and logs the line it returns; failures are one line on stderr, exit 1."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=doc.splitlines()[0])
    parser.add_argument("--model", required=True, help="model name in edge.yaml")
    args = parser.parse_args(argv)
    from google.api_core.exceptions import GoogleAPICallError

    from edge.ui import setup_logging

    setup_logging()
    try:
        line = work(args.model)
    except EdgeError as exc:
        print(f"edge: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except GoogleAPICallError as exc:
        print(f"edge: Google Cloud API error: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None
    log.info("%s", line)
