"""Pid files for the twin's child process groups, so a twin that was killed can end them later."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def record(pid_file: Path, pid: int) -> None:
    """Remembers a process group leader with its start time (a reused pid will not match)."""
    pid_file.write_text(f"{pid} {_start_time(pid)}\n")


def end_recorded(pid_file: Path) -> bool:
    """Kills the recorded process group if its leader still runs; True if it did."""
    try:
        pid_text, started = pid_file.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return False
    pid_file.unlink(missing_ok=True)
    if _start_time(pid) != started:
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True
