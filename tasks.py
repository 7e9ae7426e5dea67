"""edge: from versioned data to a live Vertex AI endpoint. `invoke --list` shows every task."""

from invoke import Collection

from edge.tasks import twin

ns = Collection(twin.ns)
