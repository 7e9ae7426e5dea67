"""Training: a model's DVC pipeline whose train stage is a Vertex CustomJob on the exact data version.

inputs.py     the params and the prepared data the job reads (DVC's cache layout in the bucket)
packaging.py  the trainer package, built and staged
jobs.py       the CustomJob: submit, wait with progress, cancel
registry.py   the new registry version and its lineage
run.py        one training run: all of the above, recorded as a Sacred run
stage.py      the DVC stage entry point (`python -m edge.training.stage --model NAME`)
pipeline.py   `invoke train`: `dvc repro` of the model's pipeline, then `dvc push`
"""

from edge.errors import EdgeError


class TrainingError(EdgeError):
    """Training could not go on; the message is one line that says why."""
