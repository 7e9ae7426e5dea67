"""The lifeline: the twin's children end by themselves when the twin dies, however it dies.

The twin makes a pipe and keeps its write end, writing nothing; every job and model server
gets the read end (`pass_fds`). When the twin's process ends, even by `kill -9`, the kernel
closes the write end and a read on the other end returns EOF: that is the signal. (Linux's
PR_SET_PDEATHSIG is no substitute: it fires when the *thread* that forked exits.)

- A model server watches its read end with `watch(fd, on_eof)`.
- A job runs under this file as a small supervisor, with the standard library only:

      python -I edge/twin/lifeline.py --lifeline FD -- COMMAND...

  It runs COMMAND in its own process group (the supervisor leads it: start it in a new
  session), passes SIGTERM/SIGINT on to it, exits as COMMAND did, and on EOF of FD ends
  the group: SIGTERM, then SIGKILL after GRACE_SECONDS. Signal the group, not only the
  supervisor, to reach everything the job started.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

GRACE_SECONDS = 5.0
SUPERVISOR = __file__  # run as a script: `python -I SUPERVISOR --lifeline FD -- COMMAND...`


class Lifeline:
    """The twin's end of the pipe; `fd` is the end its children get (see `popen_args`)."""

    def __init__(self) -> None:
        self.fd, self._write_end = os.pipe()  # neither is inherited unless passed

    def popen_args(self) -> dict:
        """What subprocess.Popen needs to hand a child the lifeline."""
        return {"pass_fds": (self.fd,)}

    def close(self) -> None:
        """Cut the lifeline: children that still hold it end."""
        for fd in (self._write_end, self.fd):
            try:
                os.close(fd)
            except OSError:
                pass


def watch(fd: int, on_eof: Callable[[], None]) -> threading.Thread:
    """Calls `on_eof` (on a daemon thread) once the lifeline `fd` reads EOF: the twin is gone."""

    def wait() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        on_eof()

    thread = threading.Thread(target=wait, name="lifeline", daemon=True)
    thread.start()
    return thread


def _end_group(child: subprocess.Popen, ending: threading.Event, grace: float) -> None:
    """SIGTERM the supervisor's process group (COMMAND and its children), SIGKILL it after `grace`."""
    ending.set()  # the supervisor's own SIGTERM handler now ignores what follows
    os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while child.returncode is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(0, signal.SIGKILL)


def _exit_as(returncode: int) -> None:
    """Exit with COMMAND's status; if a signal ended it, end this process by the same signal."""
    if returncode < 0:
        signal.signal(-returncode, signal.SIG_DFL)
        os.kill(os.getpid(), -returncode)
    sys.exit(returncode & 0xFF)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run COMMAND until it exits or the twin's lifeline breaks.")
    parser.add_argument("--lifeline", type=int, required=True, help="read end of the twin's lifeline pipe")
    parser.add_argument("--grace", type=float, default=GRACE_SECONDS, help="seconds between SIGTERM and SIGKILL")
    parser.add_argument("command", nargs="+", help="the command (after --)")
    args = parser.parse_args(argv)
    try:
        os.fstat(args.lifeline)
    except OSError:
        parser.error(f"--lifeline {args.lifeline} is not an open file descriptor")
    child = subprocess.Popen(args.command)
    ending = threading.Event()

    def pass_on(signum: int, _frame) -> None:
        if not ending.is_set():
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, pass_on)
    watch(args.lifeline, lambda: _end_group(child, ending, args.grace))
    returncode = child.wait()
    _exit_as(returncode)


if __name__ == "__main__":
    main()
