"""edge: from versioned data to a live Vertex AI endpoint. `invoke --list` shows every task."""

from invoke import Collection

from edge.tasks import data, dev, evaluation, experiments, infra, lifecycle, model, monitor, tuning, twin, web

ns = Collection(
    lifecycle.init,
    lifecycle.train,
    tuning.tune,
    evaluation.evaluate,
    lifecycle.deploy,
    lifecycle.rollback,
    lifecycle.endpoint,
    lifecycle.predict,
    lifecycle.status,
    lifecycle.destroy,
    lifecycle.force_unlock,
    dev.demo,
    dev.test,
    model.ns,
    data.ns,
    experiments.ns,
    monitor.ns,
    infra.ns,
    twin.ns,
    web.ns,
)
