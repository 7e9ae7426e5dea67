"""Constants and helpers the tests share (fixtures live in conftest.py)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_LINE = ROOT / "examples" / "train_line.py"
TRAINING_IMAGE = "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-17.py310:latest"
SERVING_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-17:latest"


def upload_line_model(vertex, artifact_uri: str, **kwargs):
    """Registers the line model (a new model, or a version with parent_model=...)."""
    return vertex.Model.upload(display_name="line", artifact_uri=artifact_uri,
                               serving_container_image_uri=SERVING_IMAGE, **kwargs)
