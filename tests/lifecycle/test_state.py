"""The shared state: typed, migrated from the old layout, safe under concurrent writers (real storage, on the twin)."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from edge.state import SCHEMA_VERSION, STATE_OBJECT, StateError, StateStore

WRITERS, UPDATES = 8, 100


@pytest.fixture
def store(target, tmp_path):
    """A StateStore on a fresh bucket of the session's twin."""
    client = target.storage_client()
    return StateStore(client.create_bucket(f"state-{os.urandom(4).hex()}"))


def _writer(env: dict, bucket: str, writer: int, results) -> None:
    """One process: UPDATES read-modify-write appends, each to be kept exactly once."""
    os.environ.update(env)
    from edge.target import twin_target

    store = StateStore(twin_target(env).storage_client().bucket(bucket))
    failed = 0
    for i in range(UPDATES):
        try:
            store.update(lambda state, i=i: state.model("counter").history.append(f"{writer}-{i}"))
        except StateError:
            failed += 1
    results.put(failed)


def test_eight_writers_of_a_hundred_updates_lose_none_and_fail_none(store, target):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    writers = [
        context.Process(target=_writer, args=(target.env, store.bucket.name, w, results)) for w in range(WRITERS)
    ]
    for process in writers:
        process.start()
    failures = [results.get(timeout=600) for _ in writers]
    for process in writers:
        process.join(timeout=60)
    kept = store.read().model("counter").history
    assert failures == [0] * WRITERS
    assert sorted(kept) == sorted(f"{w}-{i}" for w in range(WRITERS) for i in range(UPDATES))


def test_the_old_layout_is_migrated_on_first_read(store):
    old = {
        "models": {
            "fashion": {
                "registry": "projects/p/locations/l/models/1",
                "endpoint": "e",
                "deployed": [{"version": "2", "deployed_model_id": "9", "traffic": 100}],
                "history": ["1"],
            }
        },
        "infra": {"endpoints": {"fashion": "e"}},
    }
    store.bucket.blob(STATE_OBJECT).upload_from_string(json.dumps(old))
    state = store.read()
    assert state.schema_version == SCHEMA_VERSION
    assert state.models["fashion"].deployed[0].version == "2" and state.models["fashion"].history == ["1"]
    written = json.loads(store.bucket.blob(STATE_OBJECT).download_as_bytes())
    assert written["schema_version"] == SCHEMA_VERSION and written["models"]["fashion"]["registry"].endswith("/1")


@pytest.mark.parametrize(
    "content, words",
    [
        (b"{not json", "is malformed"),
        (b'{"models": {"fashion": {"deployed": [{"traffic": "lots"}]}}}', "models.fashion.deployed.0"),
        (b'{"schema_version": 99}', "newer than this edge knows"),
    ],
)
def test_a_malformed_state_is_one_line_that_says_what_to_do(store, content, words):
    store.bucket.blob(STATE_OBJECT).upload_from_string(content)
    with pytest.raises(StateError, match=words) as error:
        store.read()
    assert "\n" not in str(error.value)
