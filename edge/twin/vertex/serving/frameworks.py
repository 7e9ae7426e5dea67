"""Which framework serves a model, as Vertex AI picks it: from the model's serving image, one of Google's prebuilt
prediction images, whose name says the framework (python-aiplatform's constants/prediction.py reads it the same way:
`[region]-docker.pkg.dev/vertex-ai/prediction/[framework]-[accelerator].[version]:latest`). Each framework loads
fixed artifact file names from the model directory (Vertex's "Export model artifacts for inference").

Light on purpose: no numpy, TensorFlow, scikit-learn or XGBoost here (the twin imports it to start servers).
"""

from __future__ import annotations

import re
from pathlib import Path

TENSORFLOW, SKLEARN, XGBOOST = "tensorflow", "sklearn", "xgboost"
FRAMEWORKS = (TENSORFLOW, SKLEARN, XGBOOST)
# The files each framework's prebuilt container loads, in the order it looks for them.
ARTIFACTS = {
    TENSORFLOW: ("saved_model.pb", "saved_model.pbtxt"),
    SKLEARN: ("model.joblib", "model.pkl"),
    XGBOOST: ("model.joblib", "model.pkl", "model.bst"),
}
NAMES = {TENSORFLOW: "TensorFlow", SKLEARN: "scikit-learn", XGBOOST: "XGBoost"}
_IMAGE = re.compile(
    r"(?:[a-z0-9-]+-)?docker\.pkg\.dev/vertex-ai(?:-restricted)?/prediction/"
    r"(?P<framework>[a-z0-9_]+)-(?P<accelerator>[a-z0-9]+)\.(?P<version>[\w.-]+):latest"
)
_IMAGE_FRAMEWORKS = {"tf": TENSORFLOW, "tf2": TENSORFLOW, "tf_opt": TENSORFLOW, "sklearn": SKLEARN, "xgboost": XGBOOST}
SUPPORTED_IMAGES = "Vertex's prebuilt TensorFlow, scikit-learn and XGBoost prediction images"


class UnknownImage(ValueError):
    """A serving image the twin cannot stand in for; the message says which images it can."""


def framework_of_image(image: str) -> str:
    """The framework of a prebuilt prediction image (tensorflow, sklearn or xgboost); UnknownImage otherwise."""
    match = _IMAGE.fullmatch(image.strip())
    framework = _IMAGE_FRAMEWORKS.get(match["framework"]) if match else None
    if framework is None:
        example = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"
        raise UnknownImage(
            f"the twin serves models with {SUPPORTED_IMAGES} ({example}, tf2-cpu..., xgboost-cpu...); "
            f"{image!r} is not one of them"
        )
    return framework


def artifact_names(framework: str) -> tuple[str, ...]:
    return ARTIFACTS[framework]


def missing_artifact(framework: str, names: list[str] | set[str]) -> str | None:
    """Why a model directory holding files `names` (relative to it) cannot be served by `framework`, or None."""
    wanted = ARTIFACTS[framework]
    if set(wanted) & set(names):
        return None
    listed = ", ".join(wanted[:-1]) + f" or {wanted[-1]}"
    return f"no {listed} at its top level (what {NAMES[framework]}'s prebuilt serving container loads)"


def detect_framework(model_dir: Path) -> str | None:
    """The framework the files of `model_dir` suggest (a SavedModel, a model.bst, or a pickled model: scikit-learn
    until loading says otherwise), or None when it holds no artifact any prebuilt container loads."""
    present = {p.name for p in model_dir.iterdir()} if model_dir.is_dir() else set()
    if set(ARTIFACTS[TENSORFLOW]) & present:
        return TENSORFLOW
    if "model.bst" in present:
        return XGBOOST
    if set(ARTIFACTS[SKLEARN]) & present:
        return SKLEARN
    return None
