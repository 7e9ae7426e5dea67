"""Sacred's Google Cloud Storage observer, on the bucket edge hands it and with collision-free run ids.

Sacred's `GoogleCloudStorageObserver` writes the layout edge reads (run.json, config.json, info.json,
metrics.json, cout.txt per run folder), but it builds its own `storage.Client()` from default credentials,
takes max id + 1 without a claim (two clones training at once would share a folder), overwrites cout.txt with
only the output since its last write, and its last heartbeat can land after the run's end (Sacred waits 2 s for
it) and mark a finished run RUNNING again. This subclass takes the target's bucket (the twin or Google Cloud:
one code path), claims ids (store.claim_run_id), keeps all the output, never rewrites run.json after the end,
and never fails the training over a write: the training's outcome comes first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sacred.observers.gcs_observer import DEFAULT_GCS_PRIORITY, GoogleCloudStorageObserver

from edge.experiments.store import claim_run_id

log = logging.getLogger(__name__)


class BucketObserver(GoogleCloudStorageObserver):
    """Records a Sacred run under `gs://<bucket>/<basedir>/<id>/`; `claimant` (user@host) goes into the claim;
    `lost()` says why the target is gone, if it is (then a run end that cannot be written is no extra news)."""

    def __init__(self, bucket, basedir: str, claimant: str, lost: Callable[[], str | None] = lambda: None):
        # Not super().__init__(): it would make a client of its own with default credentials.
        self.bucket = bucket
        self.bucket_id = bucket.name
        self.basedir = basedir
        self.resource_dir = f"{basedir}/_resources"
        self.source_dir = f"{basedir}/_sources"
        self.priority = DEFAULT_GCS_PRIORITY
        self.claimant = claimant
        self.lost = lost
        self.dir = None
        self.run_entry = None
        self.config = None
        self.info = None
        self.cout = ""
        self.cout_write_cursor = 0
        self.saved_metrics = {}
        self._writing = threading.Lock()  # the heartbeat thread and the run's own thread both write
        self._ended = False
        self._warned = False

    def _determine_run_dir(self, _id):
        if _id is None:
            _id = claim_run_id(self.bucket, self.basedir, self.claimant)
        self.dir = f"{self.basedir}/{_id}"
        log.info("experiment run %s: gs://%s/%s/", _id, self.bucket_id, self.dir)
        return _id

    def save_sources(self, ex_info):
        """No source snapshots: the code of a run is its git commit and, for a dirty tree, its diff (info.json);
        Sacred's snapshots would only hold edge's own recording module."""
        return []

    def heartbeat_event(self, info, captured_out, beat_time, result):
        with self._writing:
            if not self._ended:
                self._write("a heartbeat", super().heartbeat_event, info, captured_out, beat_time, result)
                return
            # a last beat that lost the race with the end: its info and output, but never run.json again
            self.info, self.cout = info, captured_out
            self._write("the last heartbeat", self._save_info_and_cout)

    def log_metrics(self, metrics_by_name, info):
        with self._writing:  # metrics accumulate: the next write that gets through holds all of them
            self._write("metrics", super().log_metrics, metrics_by_name, info)

    def completed_event(self, stop_time, result):
        self._end("completed_event", stop_time, result)

    def interrupted_event(self, interrupt_time, status):
        self._end("interrupted_event", interrupt_time, status)

    def failed_event(self, fail_time, fail_trace):
        self._end("failed_event", fail_time, fail_trace)

    def _end(self, event: str, *args) -> None:
        """The run's last word: info and output as they are now, then run.json with its final status."""

        def last_word() -> None:
            self._save_info_and_cout()
            getattr(super(BucketObserver, self), event)(*args)

        with self._writing:
            self._ended = True
            self._write("the end (a run without it shows as RUNNING, then PROBABLY_DEAD)", last_word)

    def _write(self, what: str, write: Callable, *args) -> None:
        """Writes, and never fails the training: a bucket that cannot be reached is said once (nothing extra
        when the target is gone: the command says so itself). Sacred would drop an observer that raised."""
        try:
            write(*args)
        except Exception as exc:
            quiet = self._warned or self.lost()
            self._warned = True
            reason = (str(exc).splitlines() or [exc.__class__.__name__])[0]
            (log.debug if quiet else log.warning)(
                "could not write %s to gs://%s/%s/: %s", what, self.bucket_id, self.dir, reason
            )

    def save_cout(self):
        """All the output so far (Sacred's observer writes only what came since its last write, over the file)."""
        self.bucket.blob(f"{self.dir}/cout.txt").upload_from_string(self.cout.encode(), content_type="text/plain")
        self.cout_write_cursor = len(self.cout)

    def _save_info_and_cout(self) -> None:
        if self.info:
            self.save_json(self.info, "info.json")
        self.save_cout()
