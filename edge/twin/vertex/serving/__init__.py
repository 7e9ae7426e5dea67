"""Model server of the Vertex twin: one process per deployed model.

The process loads a TensorFlow SavedModel and answers like Vertex AI's prebuilt
TensorFlow serving container:

    GET  /health   -> 200 {"status": "ok"}
    POST /predict  {"instances": [...]} -> 200 {"predictions": [...]}

Instances use TF-serving's row format: the bare value when the `serving_default`
signature has one input, otherwise an object keyed by input name; predictions mirror
it for the outputs. Concurrent requests are batched dynamically (batching.py). The
routes are served by the twin's one HTTP layer (edge/twin/server.py); the process ends
by itself when the twin that started it dies (edge/twin/lifeline.py).

The parent twin uses `start_model_server` / `stop_model_server`. Importing the package
is cheap: numpy and TensorFlow are imported only inside the functions that need them.
"""

from edge.twin.vertex.serving.process import PROJECT_ROOT, start_model_server, stop_model_server
from edge.twin.vertex.serving.server import MAX_BODY_BYTES

__all__ = ["MAX_BODY_BYTES", "PROJECT_ROOT", "start_model_server", "stop_model_server"]
