"""scikit-learn and XGBoost models, served as Vertex AI's prebuilt containers of those frameworks serve them.

What the containers do (Google's prediction library for them, `sk_xg_prediction_lib`, and python-aiplatform's
`prediction/sklearn` and `prediction/xgboost` predictors, which reproduce it):

- scikit-learn: loads `model.joblib` (else `model.pkl`), a scikit-learn estimator or pipeline; each instance is a
  list of feature values; the answer is `predict()` of the instances as an array, one prediction per instance
  (a class, or a number for a regressor).
- XGBoost: loads `model.joblib` or `model.pkl` (an XGBoost object), else `model.bst` (`Booster.save_model`); the
  instances become an `xgboost.DMatrix` and the answer is `Booster.predict()`: for a `multi:softprob` model a row
  of class probabilities per instance, for `binary:logistic` the probability of class 1, for `multi:softmax` the
  class. The twin serves a pickled scikit-learn-API model (`XGBClassifier`...) through its Booster, as Google's
  examples export it (`xgb.train` then `joblib.dump` or `save_model`).

Both have the interface of the twin's predictors (predictor.py): `inputs` (one, `features`: float64 [None, n]),
`output_names`, `batch_limit`, `run`, `warm_up`, `describe`; and `class_probabilities`, which the evaluation uses
(scikit-learn's `predict_proba`; XGBoost's probabilities), since what is served may be classes only.
Pickled artifacts are loaded with joblib/pickle: the twin runs your own models from your own bucket.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.twin.vertex.serving.errors import first_line
from edge.twin.vertex.serving.payload import InputSpec

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

INPUT = "features"  # the one input: an instance's feature values
OUTPUT = "predictions"  # the one output: what predict() answers


def load_pickled(model_dir: Path) -> tuple[Any, str | None]:
    """(the object, its file name) of model.joblib or else model.pkl in `model_dir`; (None, None) if neither."""
    for name in ("model.joblib", "model.pkl"):
        path = model_dir / name
        if not path.is_file():
            continue
        if name.endswith(".joblib"):
            import joblib

            return joblib.load(path), name
        import pickle

        with path.open("rb") as f:
            return pickle.load(f), name
    return None, None


def kind_of(model: Any) -> str:
    """ "sklearn", "xgboost" or "" by the module of the object's class, as Google's prediction library tells them."""
    module = type(model).__module__
    return "xgboost" if "xgboost" in module else "sklearn" if "sklearn" in module else ""


class TabularPredictor:
    """A model whose instances are lists of feature values, called on numpy batches."""

    framework = ""

    def __init__(self, model: Any, source: str, features: int | None):
        import numpy as np

        self.model = model
        self.source = source
        self.inputs = [InputSpec(INPUT, np.dtype("float64"), "float64", "float", (features,))]
        self.output_names = [OUTPUT]
        self.batch_limit: int | None = None

    @property
    def features(self) -> int | None:
        return self.inputs[0].shape[0]

    def predict(self, x: np.ndarray):
        raise NotImplementedError

    def class_probabilities(self, x: np.ndarray) -> np.ndarray | None:
        """[instances, classes] probabilities, or None when the model gives none."""
        return None

    def run(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import numpy as np

        return {OUTPUT: np.asarray(self.predict(batch[INPUT]))}

    def describe(self) -> str:
        width = self.features if self.features is not None else "any number of"
        return (
            f"{self.framework} {type(self.model).__name__} from {self.source}: instances of {width} feature values; "
            f"output {OUTPUT}"
        )

    def warm_up(self) -> None:
        """Run one zero instance so that the first request pays no first-call cost."""
        import numpy as np

        try:
            self.run({INPUT: np.zeros((1, self.features or 1))})
        except Exception as exc:  # a model may reject zeros; real requests will tell
            log.warning("warm-up call failed (serving anyway): %s", first_line(exc))


class SklearnPredictor(TabularPredictor):
    """A scikit-learn estimator or pipeline from model.joblib / model.pkl: `predict()` is what is served."""

    framework = "scikit-learn"

    def __init__(self, model_dir: Path, loaded: tuple[Any, str | None] | None = None):
        model, name = loaded or load_pickled(model_dir)
        if model is None:
            raise RuntimeError("no model.joblib or model.pkl in it (what the scikit-learn container loads)")
        if kind_of(model) != "sklearn":
            cls = type(model)
            raise RuntimeError(
                f"{name} holds a {cls.__module__}.{cls.__name__}, not a scikit-learn estimator or pipeline"
            )
        super().__init__(model, name, getattr(model, "n_features_in_", None))

    def predict(self, x: np.ndarray):
        return self.model.predict(x)

    def class_probabilities(self, x: np.ndarray) -> np.ndarray | None:
        return self.model.predict_proba(x) if hasattr(self.model, "predict_proba") else None


class XGBoostPredictor(TabularPredictor):
    """An XGBoost Booster from model.joblib / model.pkl / model.bst: `Booster.predict(DMatrix(instances))` is
    what is served."""

    framework = "XGBoost"

    def __init__(self, model_dir: Path, loaded: tuple[Any, str | None] | None = None):
        import xgboost as xgb

        model, name = loaded or load_pickled(model_dir)
        if model is None:
            if not (model_dir / "model.bst").is_file():
                raise RuntimeError("no model.joblib, model.pkl or model.bst in it (what the XGBoost container loads)")
            model, name = xgb.Booster(model_file=str(model_dir / "model.bst")), "model.bst"
        elif kind_of(model) != "xgboost":
            cls = type(model)
            raise RuntimeError(f"{name} holds a {cls.__module__}.{cls.__name__}, not an XGBoost model")
        self.booster = model if isinstance(model, xgb.Booster) else model.get_booster()
        self._dmatrix = xgb.DMatrix
        super().__init__(model, name, self.booster.num_features() or None)
        self.objective = self._objective()

    def _objective(self) -> str:
        import json

        try:
            return json.loads(self.booster.save_config())["learner"]["objective"]["name"]
        except (KeyError, ValueError):
            return ""

    def predict(self, x: np.ndarray):
        return self.booster.predict(self._dmatrix(x))

    def class_probabilities(self, x: np.ndarray) -> np.ndarray | None:
        import numpy as np

        predicted = np.asarray(self.predict(x), dtype=np.float64)
        if predicted.ndim == 2 and self.objective in ("multi:softprob", "binary:logistic", ""):
            return predicted
        if predicted.ndim == 1 and self.objective == "binary:logistic":
            return np.stack([1 - predicted, predicted], axis=1)
        return None


def load_tabular(model_dir: Path, framework: str | None) -> TabularPredictor:
    """The scikit-learn or XGBoost predictor of `model_dir`; with no `framework`, the pickled object says which."""
    loaded = load_pickled(model_dir)
    if framework is None:
        framework = (kind_of(loaded[0]) or "sklearn") if loaded[0] is not None else "xgboost"
    return XGBoostPredictor(model_dir, loaded) if framework == "xgboost" else SklearnPredictor(model_dir, loaded)
