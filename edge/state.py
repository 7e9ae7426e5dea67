"""Shared state: one JSON object in the bucket, written with generation preconditions, under a lock.

The lock is an object created with `ifGenerationMatch=0` (only one creator can win) that records
owner, command and time; it is released with a delete conditioned on its own generation.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from edge.errors import EdgeError

STATE_OBJECT = "edge/state.json"
LOCK_OBJECT = "edge/lock.json"
LOCK_TTL_SECONDS = 2 * 3600
UPDATE_ATTEMPTS = 20


class StateError(EdgeError):
    """State or lock trouble; the message is one line that says what to do."""


@dataclass(frozen=True)
class LockInfo:
    owner: str
    command: str
    created: float
    generation: int

    @property
    def age_seconds(self) -> float:
        return time.time() - self.created

    @property
    def stale(self) -> bool:
        return self.age_seconds > LOCK_TTL_SECONDS

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.created, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{self.owner} ({self.command}) since {when}, {int(self.age_seconds // 60)} min ago"


def whoami() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


class StateStore:
    """State and lock objects of one bucket (a google-cloud-storage Bucket)."""

    def __init__(self, bucket):
        self.bucket = bucket

    def read(self) -> tuple[dict, int]:
        """The state and its generation; ({}, 0) when there is none yet."""
        from google.api_core.exceptions import NotFound

        blob = self.bucket.blob(STATE_OBJECT)
        try:
            data = blob.download_as_bytes()
        except NotFound:
            return {}, 0
        return json.loads(data), int(blob.generation)

    def update(self, change: Callable[[dict], None]) -> dict:
        """Applies `change` to the latest state and writes it only if nobody wrote in between."""
        from google.api_core.exceptions import PreconditionFailed

        for _ in range(UPDATE_ATTEMPTS):
            state, generation = self.read()
            change(state)
            try:
                self.bucket.blob(STATE_OBJECT).upload_from_string(
                    json.dumps(state, indent=1, sort_keys=True),
                    content_type="application/json",
                    if_generation_match=generation,
                )
                return state
            except PreconditionFailed:
                time.sleep(0.05)
        raise StateError(f"gs://{self.bucket.name}/{STATE_OBJECT} kept changing under this command; try again")

    def current_lock(self) -> LockInfo | None:
        from google.api_core.exceptions import NotFound

        blob = self.bucket.blob(LOCK_OBJECT)
        try:
            raw = json.loads(blob.download_as_bytes())
        except NotFound:
            return None
        return LockInfo(raw["owner"], raw["command"], raw["created"], int(blob.generation))

    @contextmanager
    def lock(self, command: str, wait_seconds: float = 0.0) -> Iterator[LockInfo]:
        """Holds the lock for the block; waits up to `wait_seconds` for another holder; always releases."""
        held = self._acquire(command, wait_seconds)
        try:
            yield held
        finally:
            self._release(held)

    def _acquire(self, command: str, wait_seconds: float) -> LockInfo:
        from google.api_core.exceptions import PreconditionFailed

        deadline = time.monotonic() + wait_seconds
        announced = False
        while True:
            record = {"owner": whoami(), "pid": os.getpid(), "command": command, "created": time.time()}
            blob = self.bucket.blob(LOCK_OBJECT)
            try:
                blob.upload_from_string(json.dumps(record), content_type="application/json", if_generation_match=0)
                return LockInfo(record["owner"], command, record["created"], int(blob.generation))
            except PreconditionFailed:
                holder = self.current_lock()
                if holder is None:
                    continue  # released between our write and our read
            if holder.stale:
                raise StateError(
                    f"a stale lock is held by {holder.describe()}; "
                    "if that command is no longer running, run `invoke force-unlock`"
                )
            if time.monotonic() >= deadline:
                raise StateError(
                    f"another command holds the lock: {holder.describe()}; "
                    "wait for it to finish (or pass --wait SECONDS)"
                )
            if not announced:
                print(f"waiting for the lock held by {holder.describe()}", flush=True)
                announced = True
            time.sleep(0.5)

    def _release(self, held: LockInfo) -> None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        try:
            self.bucket.blob(LOCK_OBJECT).delete(if_generation_match=held.generation)
        except (NotFound, PreconditionFailed):
            pass  # someone force-unlocked it; theirs now
        except Exception as exc:  # keep the command's own error; say how to clean up
            print(
                f"edge: could not release the lock ({exc.__class__.__name__}); "
                "once no command runs, `invoke force-unlock`",
                file=sys.stderr,
            )

    def force_unlock(self, expected: LockInfo) -> bool:
        """Removes the lock if it is still `expected` (the one the user was asked about)."""
        from google.api_core.exceptions import NotFound, PreconditionFailed

        try:
            self.bucket.blob(LOCK_OBJECT).delete(if_generation_match=expected.generation)
            return True
        except (NotFound, PreconditionFailed):
            return False
