"""Google's custom-training sample, made tiny: train a Keras model with `CustomTrainingJob`, deploy it, predict.

It follows the shape of vertex-ai-samples' notebooks/official/custom/sdk-custom-image-classification-online.ipynb
(its training script is examples/custom_training_task.py) and runs on Vertex AI and on the twin alike:

    invoke twin.up
    eval "$(invoke twin.env)"
    python examples/custom_training.py

Only the three `aiplatform.init` arguments in TWIN say "twin"; without EDGE_VERTEX_API_ENDPOINT in the
environment they are left out and the script runs on Vertex AI with your application-default credentials.
`job.run()` polls the training pipeline every 5 seconds, as the SDK always does.
"""

import io
import os
import time
from pathlib import Path

import numpy as np
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform, storage

PROJECT_ID = os.environ["GOOGLE_CLOUD_PROJECT"]
REGION = os.environ.get("GOOGLE_CLOUD_REGION", "us-central1")
BUCKET_NAME = os.environ.get("BUCKET_NAME", f"{PROJECT_ID}-aip-sample")
BUCKET_URI = f"gs://{BUCKET_NAME}"
TIMESTAMP = time.strftime("%Y%m%d%H%M%S")

TRAIN_IMAGE = "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-15.py310:latest"
DEPLOY_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
TRAIN_COMPUTE = "n1-standard-4"
DEPLOY_COMPUTE = "n1-standard-4"
CLASSES = ["horizontal", "vertical", "diagonal"]

TWIN = (
    {
        "api_endpoint": os.environ["EDGE_VERTEX_API_ENDPOINT"],  # http://127.0.0.1:PORT
        "api_transport": "rest",
        "credentials": AnonymousCredentials(),
    }
    if "EDGE_VERTEX_API_ENDPOINT" in os.environ
    else {}
)


def make_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 noisy images of a horizontal, vertical or diagonal bar, and their labels 0, 1, 2."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, count)
    x = rng.normal(0.0, 0.3, (count, 8, 8)).astype(np.float32)
    for image, label, at in zip(x, y, rng.integers(1, 7, count), strict=True):
        if label == 0:
            image[at, :] += 1.0
        elif label == 1:
            image[:, at] += 1.0
        else:
            image += np.eye(8, k=at - 3, dtype=np.float32)
    return x[..., None], y


# Create the bucket (the sample: gsutil mb -l $REGION $BUCKET_URI) and put the training data in it.
gcs = storage.Client(project=PROJECT_ID)  # STORAGE_EMULATOR_HOST points it at the twin
bucket = gcs.lookup_bucket(BUCKET_NAME) or gcs.create_bucket(BUCKET_NAME, location=REGION)
x_train, y_train = make_images(600, seed=1)
data = io.BytesIO()
np.savez(data, x=x_train, y=y_train)
bucket.blob(f"data/{TIMESTAMP}/bars.npz").upload_from_string(data.getvalue())

aiplatform.init(project=PROJECT_ID, location=REGION, staging_bucket=BUCKET_URI, **TWIN)

JOB_NAME = "custom_job_" + TIMESTAMP
CMDARGS = [f"--data={BUCKET_URI}/data/{TIMESTAMP}/bars.npz", "--epochs=10"]
job = aiplatform.CustomTrainingJob(
    display_name=JOB_NAME,
    script_path=str(Path(__file__).with_name("custom_training_task.py")),
    container_uri=TRAIN_IMAGE,
    model_serving_container_image_uri=DEPLOY_IMAGE,
)
model = job.run(
    model_display_name="bars-" + TIMESTAMP,
    args=CMDARGS,
    replica_count=1,
    machine_type=TRAIN_COMPUTE,
    accelerator_count=0,
)
print("trained and registered:", model.resource_name, "version", model.version_id)

endpoint = model.deploy(  # no endpoint given: the SDK creates one
    deployed_model_display_name="bars_deployed-" + TIMESTAMP,
    traffic_split={"0": 100},
    machine_type=DEPLOY_COMPUTE,
    min_replica_count=1,
    max_replica_count=1,
)

x_test, y_test = make_images(30, seed=2)
predictions = endpoint.predict(instances=x_test.tolist())
y_predicted = np.argmax(predictions.predictions, axis=1)
correct = int(sum(y_predicted == y_test))
print(f"Correct predictions = {correct}, Total predictions = {len(y_test)}, Accuracy = {correct / len(y_test):.2f}")
print("first three:", [CLASSES[i] for i in y_predicted[:3]], "expected:", [CLASSES[i] for i in y_test[:3]])

# Undeploy, then clean up as the sample does.
deployed_model_id = endpoint.list_models()[0].id
endpoint.undeploy(deployed_model_id=deployed_model_id)
job.delete()
model.delete()
endpoint.delete()
