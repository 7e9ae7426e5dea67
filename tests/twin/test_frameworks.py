"""The twin serves what Vertex AI's prebuilt scikit-learn and XGBoost containers serve, picked from the model's
serving image: deployed and called through the real SDK, with Vertex's request and response shapes, bad input
refused with a 400, an unknown image or a missing artifact refused at deploy, request logging as for TensorFlow."""

from __future__ import annotations

import threading
import uuid
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
from google.api_core import exceptions

from edge.twin.vertex.serving import frameworks
from edge.twin.vertex.serving.predictor import load_predictor

pytestmark = pytest.mark.timeout(300)

SKLEARN_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"
XGBOOST_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/xgboost-cpu.2-1:latest"
CUSTOM_IMAGE = "us-central1-docker.pkg.dev/my-project/serving/my-server:1"  # a custom container: not prebuilt
CLASSES = ("setosa", "versicolor", "virginica")


def make_data(rows: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four numeric features, three classes told apart by the first two."""
    rng = np.random.default_rng(seed)
    y = np.arange(rows) % 3
    x = rng.normal(size=(rows, 4)) + np.stack([y * 3.0, -y * 2.0, np.zeros(rows), np.zeros(rows)], axis=1)
    return x, y


def upload_files(bucket, prefix: str, files: dict[str, Path]) -> str:
    for name, path in files.items():
        bucket.blob(f"{prefix}/{name}").upload_from_filename(str(path))
    return f"gs://{bucket.name}/{prefix}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """Local artifacts: a scikit-learn classifier with class names, an XGBoost softprob Booster (as model.bst and
    as a joblib-pickled Booster), and the data they were fit on."""
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("frameworks")
    x, y = make_data()
    classifier = LogisticRegression(max_iter=500).fit(x, np.array(CLASSES)[y])
    joblib.dump(classifier, folder / "model.joblib")
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3, "seed": 1}, xgb.DMatrix(x, label=y), 10)
    with warnings.catch_warnings():  # "Saving model in the UBJSON format": what model.bst holds, as Vertex reads it
        warnings.simplefilter("ignore")
        booster.save_model(str(folder / "model.bst"))
    joblib.dump(booster, folder / "booster.joblib")
    return {"x": x, "y": y, "classifier": classifier, "booster": booster, "folder": folder}


@pytest.fixture(scope="module")
def deploy(session_vertex, bucket):
    """deploy(artifact_uri, image) -> an endpoint serving a model uploaded with that serving image; all are
    undeployed and deleted at the end."""
    made = []

    def _deploy(artifact_uri: str, image: str):
        model = session_vertex.Model.upload(
            display_name=f"fw-{uuid.uuid4().hex[:6]}", artifact_uri=artifact_uri, serving_container_image_uri=image
        )
        endpoint = session_vertex.Endpoint.create(display_name=model.display_name)
        made.append(endpoint)
        endpoint.deploy(model, machine_type="n1-standard-2")
        return endpoint

    yield _deploy
    for endpoint in made:
        endpoint.undeploy_all()
        endpoint.delete()


@pytest.fixture(scope="module")
def sklearn_endpoint(deploy, bucket, trained):
    uri = upload_files(
        bucket, f"frameworks/{uuid.uuid4().hex[:6]}", {"model.joblib": trained["folder"] / "model.joblib"}
    )
    return deploy(uri, SKLEARN_IMAGE)


@pytest.fixture(scope="module")
def xgboost_endpoint(deploy, bucket, trained):
    uri = upload_files(bucket, f"frameworks/{uuid.uuid4().hex[:6]}", {"model.bst": trained["folder"] / "model.bst"})
    return deploy(uri, XGBOOST_IMAGE)


def test_a_sklearn_model_answers_its_predict_results(sklearn_endpoint, trained):
    instances = trained["x"][:5].tolist()
    response = sklearn_endpoint.predict(instances=instances)
    assert list(response.predictions) == trained["classifier"].predict(trained["x"][:5]).tolist()
    assert set(response.predictions) <= set(CLASSES)


def test_concurrent_requests_to_a_sklearn_model_each_get_their_own_answers(sklearn_endpoint, trained):
    x, expected = trained["x"], trained["classifier"].predict(trained["x"]).tolist()
    answers: dict[int, list] = {}

    def ask(start: int) -> None:
        answers[start] = list(sklearn_endpoint.predict(instances=x[start : start + 3].tolist()).predictions)

    threads = [threading.Thread(target=ask, args=(start,)) for start in range(0, 48, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {start: expected[start : start + 3] for start in range(0, 48, 3)}


def test_a_sklearn_instance_of_the_wrong_length_is_a_400_that_names_it(sklearn_endpoint):
    with pytest.raises(exceptions.BadRequest, match=r"instance 1.*expected shape \[4\], got \[3\]"):
        sklearn_endpoint.predict(instances=[[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0]])


def test_a_sklearn_instance_of_strings_is_a_400(sklearn_endpoint):
    with pytest.raises(exceptions.BadRequest, match="expected float64 values"):
        sklearn_endpoint.predict(instances=[["a", "b", "c", "d"]])


def test_an_xgboost_booster_answers_its_class_probabilities(xgboost_endpoint, trained):
    import xgboost as xgb

    response = xgboost_endpoint.predict(instances=trained["x"][:4].tolist())
    expected = trained["booster"].predict(xgb.DMatrix(trained["x"][:4]))
    assert np.allclose(np.array(response.predictions, dtype=float), expected, atol=1e-6)
    assert np.array(response.predictions).shape == (4, 3)


def test_a_joblib_pickled_booster_is_served_by_the_xgboost_image(deploy, bucket, trained):
    uri = upload_files(
        bucket, f"frameworks/{uuid.uuid4().hex[:6]}", {"model.joblib": trained["folder"] / "booster.joblib"}
    )
    response = deploy(uri, XGBOOST_IMAGE).predict(instances=trained["x"][:2].tolist())
    assert np.array(response.predictions).shape == (2, 3)


def test_an_xgboost_instance_of_the_wrong_length_is_a_400(xgboost_endpoint):
    with pytest.raises(exceptions.BadRequest, match=r"expected shape \[4\]"):
        xgboost_endpoint.predict(instances=[[1.0, 2.0]])


def test_a_serving_image_the_twin_cannot_stand_in_for_fails_the_deploy(deploy, bucket, trained):
    uri = upload_files(
        bucket, f"frameworks/{uuid.uuid4().hex[:6]}", {"model.joblib": trained["folder"] / "model.joblib"}
    )
    with pytest.raises(exceptions.GoogleAPICallError, match="is not one of them"):
        deploy(uri, CUSTOM_IMAGE)


def test_a_model_without_the_artifact_its_image_loads_fails_the_deploy(deploy, bucket, trained):
    uri = upload_files(bucket, f"frameworks/{uuid.uuid4().hex[:6]}", {"model.bst": trained["folder"] / "model.bst"})
    with pytest.raises(exceptions.GoogleAPICallError, match=r"no model\.joblib or model\.pkl"):
        deploy(uri, SKLEARN_IMAGE)


def test_predict_calls_to_a_sklearn_model_are_logged_like_any_other(session_vertex, target, bucket, trained):
    from edge.monitoring import request_logging
    from tests.twin.test_request_logging import model_config, rows_of

    model = model_config(f"sk_{uuid.uuid4().hex[:8]}")
    uploaded = session_vertex.Model.upload(
        display_name="fw-logged",
        artifact_uri=upload_files(
            bucket, f"frameworks/{uuid.uuid4().hex[:6]}", {"model.joblib": trained["folder"] / "model.joblib"}
        ),
        serving_container_image_uri=SKLEARN_IMAGE,
    )
    endpoint = session_vertex.Endpoint.create(
        display_name="fw-logged", **request_logging.create_options(target.project, model)
    )
    try:
        endpoint.deploy(uploaded, machine_type="n1-standard-2")
        answered = list(endpoint.predict(instances=trained["x"][:2].tolist()).predictions)
        table = request_logging.destination(target.project, model).removeprefix("bq://")
        rows = rows_of(target.bigquery_client(), table, 1)
        assert len(rows) == 1
        assert answered[0] in str(rows[0]["response_payload"])
    finally:
        endpoint.undeploy_all()
        endpoint.delete()


# ------------------------------------------------------------------ in-process: images and load_predictor


@pytest.mark.parametrize(
    ("image", "framework"),
    [
        (SKLEARN_IMAGE, "sklearn"),
        (XGBOOST_IMAGE, "xgboost"),
        ("europe-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest", "tensorflow"),
    ],
)
def test_the_framework_is_read_from_the_prebuilt_image_name(image, framework):
    assert frameworks.framework_of_image(image) == framework


def test_an_image_that_is_not_a_prebuilt_prediction_image_is_refused_in_one_line():
    with pytest.raises(frameworks.UnknownImage, match="TensorFlow, scikit-learn and XGBoost"):
        frameworks.framework_of_image(CUSTOM_IMAGE)


def test_load_predictor_finds_the_framework_from_the_files_when_none_is_given(trained, tmp_path):
    (tmp_path / "sk").mkdir()
    (tmp_path / "xgb").mkdir()
    joblib.dump(trained["classifier"], tmp_path / "sk" / "model.joblib")
    joblib.dump(trained["booster"], tmp_path / "xgb" / "model.joblib")
    assert load_predictor(tmp_path / "sk").framework == "scikit-learn"
    assert load_predictor(tmp_path / "xgb").framework == "XGBoost"


def test_the_evaluation_gets_class_probabilities_from_a_classifier_that_serves_classes(trained):
    predictor = load_predictor(trained["folder"], "sklearn")
    probabilities = predictor.class_probabilities(trained["x"][:3])
    assert probabilities.shape == (3, 3) and np.allclose(probabilities.sum(axis=1), 1)
    assert predictor.run({"features": trained["x"][:3]})["predictions"].tolist() == list(
        trained["classifier"].predict(trained["x"][:3])
    )
