"""Drive the twin with the official Google Cloud SDKs, exactly as you would drive Vertex AI.

    invoke twin.up
    eval "$(invoke twin.env)"
    python examples/twin_quickstart.py

Trains examples/train_line.py as a CustomJob, registers the SavedModel it writes, deploys it to an
endpoint and asks for predictions. Only the endpoint and the credentials say "twin".
"""

import os
import time
from pathlib import Path

from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform, storage

project = os.environ["GOOGLE_CLOUD_PROJECT"]
region = os.environ["GOOGLE_CLOUD_REGION"]
credentials = AnonymousCredentials()  # on Google Cloud: leave out, application-default credentials apply

gcs = storage.Client(project=project, credentials=credentials)  # STORAGE_EMULATOR_HOST points it at the twin
bucket = gcs.lookup_bucket("quickstart") or gcs.create_bucket("quickstart")
aiplatform.init(
    project=project,
    location=region,
    api_endpoint=os.environ["EDGE_VERTEX_API_ENDPOINT"],  # leave out on Google Cloud
    api_transport="rest",
    credentials=credentials,
    staging_bucket=f"gs://{bucket.name}/staging",
)

run = time.strftime("%Y%m%d-%H%M%S")
job = aiplatform.CustomJob.from_local_script(
    display_name="train-line",
    script_path=str(Path(__file__).with_name("train_line.py")),
    container_uri="us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-15.py310:latest",
    base_output_dir=f"gs://{bucket.name}/runs/{run}",
)
job.run()

model = aiplatform.Model.upload(
    display_name="line",
    artifact_uri=f"gs://{bucket.name}/runs/{run}/model",
    serving_container_image_uri="us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest",
)
endpoint = aiplatform.Endpoint.create(display_name="line")
endpoint.deploy(model, machine_type="n1-standard-2")
prediction = endpoint.predict(instances=[[1.0], [2.0], [3.0]])
print("predictions for x = 1, 2, 3 (the model learnt y = 2x + 1):", prediction.predictions)

endpoint.undeploy_all()
endpoint.delete()
