"""What edge shows and asks on the terminal: progress lines, tables, JSON, prompts. Library code only logs
(`logging.getLogger(__name__)`); tasks print results through this module."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Sequence
from typing import Any


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


def setup_logging(verbose: bool = False) -> None:
    """edge's progress (INFO) goes to stdout as bare lines, its warnings to stderr as `edge: warning: ...`."""
    logger = logging.getLogger("edge")
    if getattr(logger, "_edge_configured", False):
        return
    progress = logging.StreamHandler(sys.stdout)
    progress.addFilter(_BelowWarning())
    progress.setFormatter(logging.Formatter("%(message)s"))
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setLevel(logging.WARNING)
    warnings.setFormatter(logging.Formatter("edge: warning: %(message)s"))
    logger.handlers[:] = [progress, warnings]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    logger._edge_configured = True


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str], align: Sequence[str] | None = None) -> str:
    """A plain-text table (no width limit, so it reads the same in a terminal, a pipe and CI logs)."""
    from tabulate import tabulate

    return tabulate(
        [["-" if v is None else v for v in row] for row in rows],
        headers=headers,
        tablefmt="simple",
        colalign=align,
        disable_numparse=True,
    )


def show(text: str = "") -> None:
    print(text, flush=True)


def show_table(rows: Iterable[Sequence[Any]], headers: Sequence[str], align: Sequence[str] | None = None) -> None:
    show(table(rows, headers, align))


def show_json(value: Any) -> None:
    """A result for programs: one JSON document on stdout."""
    print(json.dumps(value, indent=2, sort_keys=True, default=str), flush=True)


def confirm(question: str) -> bool:
    """Asks y/N on the terminal; no terminal (CI without --yes) means no."""
    try:
        return input(f"{question} [y/N] ").strip().lower() == "y"
    except EOFError:
        return False


def confirm_typed(question: str, word: str = "yes") -> bool:
    """Asks for a typed word (for changes to real infrastructure); no terminal means no."""
    try:
        return input(f"{question} Type '{word}' to go on: ").strip() == word
    except EOFError:
        return False


def number(value: float | None, digits: int = 4) -> str:
    """A figure in tables and reports: `digits` decimals, or "-" when there is none."""
    return "-" if value is None else f"{value:.{digits}f}"
