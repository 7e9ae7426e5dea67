"""Model evaluations and their slices, per model version: import, get, list (paginated, filtered).

Evaluations are named `projects/p/locations/l/models/ID/evaluations/E` and belong to one version of the model;
requests may name the model as `ID` (its default version) or `ID@VERSION` / `ID@alias` (the SDK's
`Model.list_model_evaluations()` lists under the versioned name). Deleting a version deletes its evaluations.
"""

from __future__ import annotations

import base64
import copy
from typing import TYPE_CHECKING

from edge.twin.errors import InvalidArgument, NotFound
from edge.twin.vertex import filters
from edge.twin.vertex.store import Store, now

if TYPE_CHECKING:
    from edge.twin.vertex.models import ModelRegistry

COLLECTION = "modelEvaluations"  # evaluation name -> {"model", "versionId", "evaluation", "slices": {name: slice}}
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_IMPORTED = ("displayName", "metricsSchemaUri", "metrics", "sliceDimensions", "dataItemSchemaUri",
             "annotationSchemaUri", "metadata", "modelExplanation", "explanationSpecs")  # fmt: skip


def forget_evaluations(store: Store, model: str, version_id: str | None = None) -> None:
    """Drops the evaluations of one version of `model` (every version's when `version_id` is None).
    The caller holds `store.lock` and saves."""
    entries = store.collection(COLLECTION)
    for name in [n for n, e in entries.items() if e["model"] == model and version_id in (None, e["versionId"])]:
        del entries[name]


def page(items: list[dict], page_size: str | None, page_token: str | None) -> tuple[list[dict], str]:
    """One page of `items` and the token of the next one ("" after the last)."""
    size = _page_size(page_size)
    start = 0
    if page_token:
        try:
            start = int(base64.urlsafe_b64decode(page_token.encode()).decode())
        except ValueError:
            raise InvalidArgument(f"Invalid page token {page_token!r}.") from None
    end = start + size
    token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else ""
    return items[start:end], token


def _page_size(text: str | None) -> int:
    if not text:
        return DEFAULT_PAGE_SIZE
    if not text.isdecimal():
        raise InvalidArgument(f"page_size must be a positive number, got {text!r}.")
    return min(int(text) or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class ModelEvaluations:
    """Evaluations kept in the store, tied to the registry's versions."""

    def __init__(self, store: Store, models: ModelRegistry):
        self.store = store
        self.models = models

    def _entries(self) -> dict:
        return self.store.collection(COLLECTION)

    def _entry(self, name: str) -> dict:
        """The stored entry of evaluation `name` (its model may be written `ID@VERSION`)."""
        model_ref, _, evaluation_id = name.partition("/evaluations/")
        model, _, ref = model_ref.partition("@")
        entry = self._entries().get(f"{model}/evaluations/{evaluation_id}")
        if entry is None or ref and self.models.resolve(model_ref)["versionId"] != entry["versionId"]:
            raise NotFound(f"ModelEvaluation {name} not found.")
        return entry

    def import_(self, parent: str, body: dict) -> dict:
        """`evaluations:import`: the evaluation in `body["modelEvaluation"]`, attached to the version `parent` names."""
        given = body.get("modelEvaluation")
        if not isinstance(given, dict):
            raise InvalidArgument("model_evaluation is required.")
        with self.store.lock:
            version = self.models.resolve(parent)
            name = f"{version['name']}/evaluations/{self.store.new_id()}"
            evaluation = {
                **{k: copy.deepcopy(v) for k, v in given.items() if k in _IMPORTED},
                "name": name,
                "createTime": now(),
            }
            self._entries()[name] = {
                "model": version["name"],
                "versionId": version["versionId"],
                "evaluation": evaluation,
                "slices": {},
            }
            self.store.save()
        return evaluation

    def get(self, name: str) -> dict:
        with self.store.lock:
            return self._entry(name)["evaluation"]

    def list(self, parent: str, query: dict) -> dict:
        """`GET .../evaluations` under `parent` (`ID`: the default version), oldest first, one page."""
        terms = filters.parse(query.get("filter"))
        with self.store.lock:
            version = self.models.resolve(parent)
            found = [
                e["evaluation"]
                for e in self._entries().values()
                if e["model"] == version["name"] and e["versionId"] == version["versionId"]
            ]
        found = [e for e in sorted(found, key=lambda e: e["createTime"]) if filters.matches(e, terms)]
        items, token = page(found, query.get("pageSize"), query.get("pageToken"))
        return {"modelEvaluations": items, "nextPageToken": token}

    def import_slices(self, parent: str, body: dict) -> dict:
        """`slices:batchImport`: each slice of `body["modelEvaluationSlices"]` under evaluation `parent`."""
        given = body.get("modelEvaluationSlices")
        if not isinstance(given, list) or not all(isinstance(s, dict) for s in given):
            raise InvalidArgument("model_evaluation_slices must be a list of slices.")
        names = []
        with self.store.lock:
            entry = self._entry(parent)
            for one in given:
                dimension = (one.get("slice") or {}).get("dimension")
                if not dimension:
                    raise InvalidArgument("Each slice needs slice.dimension.")
                name = f"{entry['evaluation']['name']}/slices/{self.store.new_id()}"
                stored = {k: copy.deepcopy(v) for k, v in one.items() if k in ("slice", "metricsSchemaUri", "metrics")}
                entry["slices"][name] = {**stored, "name": name, "createTime": now()}
                names.append(name)
            self.store.save()
        return {"importedModelEvaluationSlices": names}

    def get_slice(self, name: str) -> dict:
        evaluation, _, slice_id = name.partition("/slices/")
        with self.store.lock:
            entry = self._entry(evaluation)
            try:
                return entry["slices"][f"{entry['evaluation']['name']}/slices/{slice_id}"]
            except KeyError:
                raise NotFound(f"ModelEvaluationSlice {name} not found.") from None

    def list_slices(self, parent: str, query: dict) -> dict:
        """`GET .../slices`, filtered on `slice.dimension` as Vertex allows, one page."""
        terms = filters.parse(query.get("filter"))
        with self.store.lock:
            slices = list(self._entry(parent)["slices"].values())
        found = [s for s in slices if filters.matches(s, terms)]
        items, token = page(found, query.get("pageSize"), query.get("pageToken"))
        return {"modelEvaluationSlices": items, "nextPageToken": token}
