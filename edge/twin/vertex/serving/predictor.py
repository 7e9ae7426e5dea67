"""The model, called on numpy batches: a SavedModel's `serving_default` signature (here), or a scikit-learn or
XGBoost model (tabular.py); `load_predictor` picks one. TensorFlow and numpy are imported only inside the methods
that need them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.twin.vertex.serving.errors import first_line
from edge.twin.vertex.serving.payload import InputSpec, format_shape

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


class SavedModelPredictor:
    """The `serving_default` signature of a SavedModel, called on numpy batches."""

    framework = "TensorFlow"

    def __init__(self, model_dir: Path):
        import tensorflow as tf

        self._tf = tf
        self._loaded = tf.saved_model.load(str(model_dir))  # keeps the variables alive
        signatures = self._loaded.signatures
        if "serving_default" not in signatures:
            raise RuntimeError(
                f"SavedModel at {model_dir} has no 'serving_default' signature "
                f"(it has: {', '.join(signatures) or 'none'})"
            )
        self._function = signatures["serving_default"]
        _, specs = self._function.structured_input_signature
        self.inputs = [self._input_spec(name, spec) for name, spec in specs.items()]
        self.output_names = list(self._function.structured_outputs)
        if not self.inputs:
            raise RuntimeError(f"SavedModel at {model_dir}: serving_default takes no inputs")
        fixed = [spec.shape[0] for spec in specs.values() if spec.shape[0] is not None]
        self.batch_limit: int | None = min(fixed) if fixed else None  # None: any batch size

    def _input_spec(self, name: str, spec: Any) -> InputSpec:
        import numpy as np

        dtype = spec.dtype
        if dtype.is_bool:
            kind = "bool"
        elif dtype == self._tf.string:
            kind = "string"
        elif dtype.is_floating:
            kind = "float"
        elif dtype.is_integer:
            kind = "int"
        else:
            raise RuntimeError(f"input '{name}' has dtype {dtype.name}, which the twin cannot take from JSON")
        if not spec.shape.rank:
            raise RuntimeError(
                f"input '{name}' has shape {spec.shape}; the twin needs a known rank with a leading batch dimension"
            )
        shape = tuple(spec.shape.as_list()[1:])
        return InputSpec(name, np.dtype(dtype.as_numpy_dtype), dtype.name, kind, shape)

    def describe(self) -> str:
        inputs = ", ".join(f"{s.name}: {s.dtype_name}{format_shape((None, *s.shape))}" for s in self.inputs)
        return f"inputs ({inputs}); outputs ({', '.join(self.output_names)})"

    def run(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = self._tf
        outputs = self._function(**{name: tf.constant(arr) for name, arr in batch.items()})
        return {name: outputs[name].numpy() for name in self.output_names}

    def warm_up(self) -> None:
        """Run one zero instance so that the first request pays no first-call cost."""
        import numpy as np

        batch = {
            s.name: np.zeros((1, *(d or 1 for d in s.shape)), dtype=object if s.kind == "string" else s.dtype)
            for s in self.inputs
        }
        for s in self.inputs:
            if s.kind == "string":
                batch[s.name].fill(b"")
        try:
            self.run(batch)
        except Exception as exc:  # a model may reject zeros; real requests will tell
            log.warning("warm-up call failed (serving anyway): %s", first_line(exc))


def load_predictor(model_dir: Path, framework: str | None = None):
    """The predictor of the model artifact in `model_dir`, as the twin's model servers load it: `framework`
    (tensorflow, sklearn or xgboost: see frameworks.py, which reads it from the serving image as Vertex does), or
    when not given, the one the artifact's files suggest. Every predictor has `inputs`, `output_names`,
    `batch_limit`, `run`, `warm_up` and `describe`. RuntimeError, one line, if it cannot be served."""
    from edge.twin.vertex.serving import frameworks

    model_dir = Path(model_dir)
    detected = frameworks.detect_framework(model_dir) if framework is None else None
    if framework is None and detected is None:
        raise RuntimeError(
            "no model artifact in it: no saved_model.pb (TensorFlow), model.joblib or model.pkl (scikit-learn, "
            "XGBoost) or model.bst (XGBoost)"
        )
    if detected == frameworks.TENSORFLOW:
        framework = detected
    if framework is not None and framework not in frameworks.FRAMEWORKS:
        raise RuntimeError(f"unknown framework {framework!r}: one of {', '.join(frameworks.FRAMEWORKS)}")
    if framework == frameworks.TENSORFLOW:
        if not any((model_dir / name).is_file() for name in frameworks.artifact_names(framework)):
            raise RuntimeError("no saved_model.pb in it (what the TensorFlow container loads)")
        return SavedModelPredictor(model_dir)
    from edge.twin.vertex.serving.tabular import load_tabular

    return load_tabular(model_dir, framework)  # None: a pickled model says itself which framework it is
