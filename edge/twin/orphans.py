"""The twin's child processes by pid: alive or not, and pid files for the process groups a killed twin left.

Children end by themselves when their twin dies (edge/twin/lifeline.py); the pid files are the
second line of defence, used when a twin starts again or is stopped with `down`.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _start_time(pid: int) -> str | None:
    try:
        return repr(psutil.Process(pid).create_time())
    except psutil.Error:
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
