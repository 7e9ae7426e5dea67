"""The training script of the training-pipeline tests: it "trains" by copying a SavedModel into AIP_MODEL_DIR
through google-cloud-storage (no TensorFlow, so a pipeline takes seconds); --fail and --sleep for the tests."""

import argparse
import os
import sys
import time

from google.cloud import storage


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-from", help="gs:// directory of the SavedModel to copy")
    parser.add_argument("--fail", action="store_true", help="exit with status 3")
    parser.add_argument("--sleep", type=float, default=0.0, help="wait this long first")
    args = parser.parse_args()
    if args.sleep:
        print("sleeping", flush=True)
        time.sleep(args.sleep)
    if args.fail:
        print("copy task: asked to fail", file=sys.stderr, flush=True)
        raise SystemExit(3)
    source_bucket, _, source = args.model_from.removeprefix("gs://").partition("/")
    target_bucket, _, target = os.environ["AIP_MODEL_DIR"].removeprefix("gs://").partition("/")
    client = storage.Client()
    for blob in client.list_blobs(source_bucket, prefix=source.rstrip("/") + "/"):
        name = target.rstrip("/") + "/" + blob.name[len(source.rstrip("/")) + 1 :]
        client.bucket(target_bucket).blob(name).upload_from_string(blob.download_as_bytes())
    print("copied the model to", os.environ["AIP_MODEL_DIR"], flush=True)


if __name__ == "__main__":
    main()
