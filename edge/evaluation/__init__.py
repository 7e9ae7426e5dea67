"""Testing the model: every registry version is evaluated on the model's held-out split, and the evaluation is kept
in the registry as a Vertex ModelEvaluation that `invoke deploy`'s gate reads.

metrics.py    classification metrics from labels and probabilities (numpy), in Vertex's schema too
behaviour.py  behavioural tests: invariance to the model's perturbations, a minimum recall per class
evaluate.py   a version evaluated locally: its artifact, the twin's predictor, the held-out instances, the hooks
registry.py   the evaluation imported onto the version (ModelEvaluation + a slice per class), and read back
stage.py      the DVC stage entry point (`python -m edge.evaluation.stage --model NAME`)
gate.py       the deploy gate: a candidate against the floor, the serving version and its behavioural tests
report.py     the HTML page of an evaluation (`invoke evaluate --report`)
"""

from edge.errors import EdgeError


class EvaluationError(EdgeError):
    """A version could not be evaluated, or its evaluation read; the message is one line that says why."""
