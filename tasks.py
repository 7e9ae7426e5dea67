"""edge: from versioned data to a live Vertex AI endpoint. `invoke --list` shows every task."""

from invoke import Collection

from edge.tasks import data, dev, experiments, infra, lifecycle, twin, web

ns = Collection(
    lifecycle.init,
    lifecycle.train,
    lifecycle.deploy,
    lifecycle.rollback,
    lifecycle.endpoint,
    lifecycle.predict,
    lifecycle.status,
    lifecycle.destroy,
    lifecycle.force_unlock,
    dev.demo,
    dev.test,
    data.ns,
    experiments.ns,
    infra.ns,
    twin.ns,
    web.ns,
)
