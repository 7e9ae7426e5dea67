"""Reading and writing `gs://bucket/path` or local paths.

gs:// goes through google-cloud-storage (`storage.Client()` honours STORAGE_EMULATOR_HOST, so edge's offline twin
works too); no framework's own gs:// filesystem is used (TensorFlow's cannot be pointed at an emulator).
"""

from __future__ import annotations

from pathlib import Path


def is_gcs(uri: str) -> bool:
    return uri.startswith("gs://")


def _split(uri: str) -> tuple[str, str]:
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not bucket or not name.strip("/"):
        raise ValueError(f"{uri!r} is not a gs://bucket/path URI")
    return bucket, name


def _bucket(name: str):
    from google.cloud import storage

    return storage.Client().bucket(name)


def fetch(uri: str, directory: Path) -> Path:
    """A local path holding the file at `uri` (downloaded into `directory` when gs://)."""
    if not is_gcs(uri):
        return Path(uri)
    bucket, name = _split(uri)
    local = directory / name.rsplit("/", 1)[-1]
    _bucket(bucket).blob(name).download_to_filename(str(local))
    return local


def upload_tree(local: Path, uri: str) -> int:
    """Copies every file under `local` to the gs:// prefix `uri`; returns the number of files."""
    bucket_name, prefix = _split(uri)
    bucket = _bucket(bucket_name)
    files = sorted(p for p in local.rglob("*") if p.is_file())
    for path in files:
        bucket.blob(f"{prefix.rstrip('/')}/{path.relative_to(local).as_posix()}").upload_from_filename(str(path))
    return len(files)


def write_text(uri: str, text: str, content_type: str = "application/json") -> None:
    """Writes `text` to a gs:// object or a local file (creating parent directories)."""
    if is_gcs(uri):
        bucket, name = _split(uri)
        _bucket(bucket).blob(name).upload_from_string(text, content_type=content_type)
    else:
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def default_metrics_uri(model_dir: str) -> str:
    """metrics.json beside the model directory: <base>/metrics.json for AIP_MODEL_DIR <base>/model/ (a tuning
    trial's base is <job base>/<trial id>, so every trial writes its own)."""
    return f"{model_dir.rstrip('/').rsplit('/', 1)[0]}/metrics.json"
