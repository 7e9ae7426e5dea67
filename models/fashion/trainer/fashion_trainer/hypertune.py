"""The tuning metric, reported the way `cloudml-hypertune` reports it.

Vertex AI's hyperparameter tuning reads what a trial measured from the file that `cloudml-hypertune`
(`hypertune.HyperTune().report_hyperparameter_tuning_metric(tag, value, step)`) writes: JSON lines in
$CLOUD_ML_HP_METRIC_FILE (default /tmp/hypertune/output.metrics), the last 100 reports, each
`{"global_step": "3", "<tag>": "0.87", "timestamp": 1700000000.0, "trial": "<CLOUD_ML_TRIAL_ID>"}`, the
file rewritten on every report. This module writes the same file itself: the trainer may use only what
Vertex's prebuilt TensorFlow container is known to have (tensorflow, numpy, google-cloud-storage), and
`--no-deps` installs (the twin's, and edge's packaging) would not bring the library along.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path

DEFAULT_PATH = "/tmp/hypertune/output.metrics"
MAX_ENTRIES = 100  # cloudml-hypertune keeps the last 100 reports


class MetricReporter:
    """`report(tag, value, step)` as cloudml-hypertune's HyperTune.report_hyperparameter_tuning_metric."""

    def __init__(self) -> None:
        self.path = Path(os.environ.get("CLOUD_ML_HP_METRIC_FILE", DEFAULT_PATH))
        self.trial = os.environ.get("CLOUD_ML_TRIAL_ID", "0")
        self.entries: deque[dict] = deque(maxlen=MAX_ENTRIES)

    def report(self, tag: str, value: float, step: int) -> None:
        self.entries.append(
            {"timestamp": time.time(), "trial": str(self.trial), tag: str(float(value)), "global_step": str(int(step))}
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(json.dumps(entry, sort_keys=True) + "\n" for entry in self.entries))
