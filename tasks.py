"""edge: from versioned data to a live Vertex AI endpoint. `invoke --list` shows every task."""

from invoke import Collection

from edge.tasks import dev, twin

ns = Collection(twin.ns, dev.test, dev.demo)
