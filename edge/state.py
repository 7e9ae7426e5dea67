"""Shared state: one JSON object in the bucket, typed and schema-versioned, written with generation
preconditions, under a lock. This module is the only one that reads or writes `edge/state.json`.

The lock is an object created with `ifGenerationMatch=0` (only one creator can win) that records
owner, command and time; it is released with a delete conditioned on its own generation.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from pydantic import BaseModel, Field, ValidationError

from edge.errors import EdgeError

log = logging.getLogger(__name__)

STATE_OBJECT = "edge/state.json"
LOCK_OBJECT = "edge/lock.json"
LOCK_TTL_SECONDS = 2 * 3600
SCHEMA_VERSION = 2
UPDATE_TIMEOUT_SECONDS = 120.0  # how long an update keeps retrying while others write


class StateError(EdgeError):
    """State or lock trouble; the message is one line that says what to do."""


class Deployment(BaseModel):
    """A registry version on the model's endpoint."""

    version: str
    deployed_model_id: str
    traffic: int = 0


class DeployRecord(BaseModel):
    """One deploy in the model's history: who moved which version to how much traffic, and why if forced."""

    version: str
    traffic: int
    who: str
    when: float
    forced: bool = False
    reason: str | None = None


class ModelState(BaseModel):
    registry: str | None = None  # the registry entry (projects/.../models/ID)
    endpoint: str | None = None  # the endpoint's resource name
    deployed: list[Deployment] = Field(default_factory=list)
    history: list[str] = Field(default_factory=list)  # versions that served before each deploy (rollback)
    deploys: list[DeployRecord] = Field(default_factory=list)


class State(BaseModel):
    schema_version: int = SCHEMA_VERSION
    models: dict[str, ModelState] = Field(default_factory=dict)
    infra: dict = Field(default_factory=dict)  # Terraform's outputs (gcp)

    def model(self, name: str) -> ModelState:
        """The model's entry, created empty when it has none yet."""
        return self.models.setdefault(name, ModelState())


def migrate(raw: dict) -> dict:
    """Today's layout from any earlier one. Version 1 (no `schema_version`) had the same fields, untyped."""
    version = raw.get("schema_version", 1)
    if version > SCHEMA_VERSION:
        raise StateError(
            f"{STATE_OBJECT} has schema version {version}, newer than this edge knows "
            f"({SCHEMA_VERSION}): update edge (git pull)"
        )
    return {**raw, "schema_version": SCHEMA_VERSION}


def parse_state(data: bytes, where: str) -> tuple[State, bool]:
    """The state in `data` and whether it had to be migrated; StateError (one line) if it is malformed."""
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        migrated = raw.get("schema_version") != SCHEMA_VERSION
        return State.model_validate(migrate(raw)), migrated
    except (ValueError, ValidationError) as exc:
        problem = str(exc).splitlines()[0] if not isinstance(exc, ValidationError) else _first_error(exc)
        raise StateError(
            f"{where} is malformed ({problem}); restore an earlier generation of it "
            "(the bucket is versioned on gcp) or remove it and run `invoke init`"
        ) from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"


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

    def __init__(self, bucket, target_lost: Callable[[], str | None] = lambda: None):
        self.bucket = bucket
        self.target_lost = target_lost  # why the storage is gone for good (then a failed release is expected)
        self.held: LockInfo | None = None  # the lock this process holds, if any

    @property
    def where(self) -> str:
        return f"gs://{self.bucket.name}/{STATE_OBJECT}"

    def read(self) -> State:
        """The current state (empty before `invoke init`); a state in an older layout is migrated."""
        return self._read()[0]

    def _read(self) -> tuple[State, int]:
        from google.api_core.exceptions import NotFound

        blob = self.bucket.blob(STATE_OBJECT)
        try:
            data = blob.download_as_bytes()
        except NotFound:
            return State(), 0
        state, migrated = parse_state(data, self.where)
        generation = int(blob.generation)
        if migrated:
            generation = self._write_migrated(state, generation)
        return state, generation

    def _write_migrated(self, state: State, generation: int) -> int:
        from google.api_core.exceptions import PreconditionFailed

        try:
            return self._write(state, generation)
        except PreconditionFailed:
            return generation  # someone wrote meanwhile; whoever writes next writes the new layout

    def _write(self, state: State, generation: int) -> int:
        blob = self.bucket.blob(STATE_OBJECT)
        blob.upload_from_string(
            state.model_dump_json(indent=1), content_type="application/json", if_generation_match=generation
        )
        return int(blob.generation)

    def update(self, change: Callable[[State], object]) -> State:
        """Applies `change` to the latest state and writes it only if nobody wrote in between; retries
        with jittered exponential backoff while others write, so concurrent commands never lose an update."""
        from google.api_core import retry
        from google.api_core.exceptions import PreconditionFailed, RetryError

        def attempt() -> State:
            state, generation = self._read()
            change(state)
            self._write(state, generation)
            return state

        policy = retry.Retry(
            predicate=retry.if_exception_type(PreconditionFailed),
            initial=0.02,
            maximum=1.0,
            multiplier=2.0,
            timeout=UPDATE_TIMEOUT_SECONDS,
        )
        try:
            return policy(attempt)()
        except RetryError:
            raise StateError(
                f"{self.where} kept changing for {UPDATE_TIMEOUT_SECONDS:.0f} s under this command; try again"
            ) from None

    def remember_infra(self, outputs: dict) -> None:
        """Keeps Terraform's outputs (endpoints, service accounts, tracker) in the state for train and deploy."""

        def keep(state: State) -> None:
            state.infra = outputs
            for model, endpoint in outputs.get("endpoints", {}).items():
                state.model(model).endpoint = endpoint

        self.update(keep)

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
        self.held = self._acquire(command, wait_seconds)
        try:
            yield self.held
        finally:
            if self._release(self.held):
                self.held = None

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
                log.info("waiting for the lock held by %s", holder.describe())
                announced = True
            time.sleep(0.5)

    def _release(self, held: LockInfo) -> bool:
        """Deletes our lock (once, quickly: a target that is gone must not hold the command); False if it
        could not, with a warning saying how to clean up."""
        from google.api_core.exceptions import NotFound, PreconditionFailed

        try:
            self.bucket.blob(LOCK_OBJECT).delete(if_generation_match=held.generation, retry=None, timeout=10)
        except (NotFound, PreconditionFailed):
            pass  # someone force-unlocked it; theirs now
        except Exception as exc:  # keep the command's own error; say how to clean up
            if not self.target_lost():  # when the target is gone for good, the command's error says so
                log.warning(
                    "could not release the lock (%s); once no command runs, `invoke force-unlock`",
                    exc.__class__.__name__,
                )
            return False
        return True

    def force_unlock(self, expected: LockInfo) -> bool:
        """Removes the lock if it is still `expected` (the one the user was asked about)."""
        from google.api_core.exceptions import NotFound, PreconditionFailed

        try:
            self.bucket.blob(LOCK_OBJECT).delete(if_generation_match=expected.generation)
            return True
        except (NotFound, PreconditionFailed):
            return False
