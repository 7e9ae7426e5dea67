"""Training on one replica or many: the strategy TF_CONFIG asks for, which replica is the chief, and the loop.

Vertex AI sets TF_CONFIG on every replica of a job: `{"cluster": {"chief": [...], "worker": [...]}, "task":
{"type": "chief" | "worker", "index": i}, ...}` (worker pool 0 is the chief, pool 1 the workers). With more than
one task in the cluster the model trains under `tf.distribute.MultiWorkerMirroredStrategy`: every replica runs
this code, each takes its share of every global batch (`batch_size` is the global batch) and the gradients are
all-reduced, so N replicas train the model one replica would with the same batch. Only the chief writes the
model, the metrics and the tuning metric (task.py); the others save into a temporary directory, as TensorFlow's
guide advises (saving may take part in collective ops), and delete it.

The loop is written out rather than Keras' `fit`: Keras 3's `fit` fails under MultiWorkerMirroredStrategy (its
symbolic build asks the strategy to reduce a tuple of per-replica batches, which it refuses), and one replica runs
the same loop under the default strategy, so that 1 and N replicas train the same way.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf

VALIDATION_BATCH = 1024


def cluster() -> tuple[str, int, int]:
    """(task type, task index, number of tasks in the cluster) from TF_CONFIG; ("chief", 0, 1) without one."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    tasks = sum(len(addresses) for addresses in (config.get("cluster") or {}).values())
    task = config.get("task") or {}
    return task.get("type", "chief"), int(task.get("index", 0)), max(tasks, 1)


def is_chief() -> bool:
    """The replica that writes: the chief (Vertex's worker pool 0), or worker 0 of a cluster without a chief."""
    kind, index, _ = cluster()
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    has_chief = bool((config.get("cluster") or {}).get("chief") or (config.get("cluster") or {}).get("master"))
    return kind in ("chief", "master") or (not has_chief and kind == "worker" and index == 0)


def make_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy for a cluster of several tasks, else the default (one-replica) strategy."""
    if cluster()[2] > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def _distributed_batches(strategy, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
    """An endless iterator of shuffled global batches, each split among the replicas (DATA sharding: every replica
    reads the same seeded order and keeps its part of each batch)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(batch_size)
        .with_options(options)
    )
    return iter(strategy.experimental_distribute_dataset(dataset))


def evaluate(model: tf.keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(loss, accuracy, probabilities) of the model on (x, y), computed on this replica alone."""
    probabilities = np.concatenate(
        [model(x[i : i + VALIDATION_BATCH], training=False).numpy() for i in range(0, len(x), VALIDATION_BATCH)]
    )
    picked = np.clip(probabilities[np.arange(len(y)), y], 1e-7, 1.0)
    return float(-np.log(picked).mean()), float((probabilities.argmax(axis=1) == y).mean()), probabilities


def train(
    strategy,
    build: Callable[[], tuple[tf.keras.Model, tf.keras.optimizers.Optimizer]],
    train_data: tuple[np.ndarray, np.ndarray],
    validation_data: tuple[np.ndarray, np.ndarray],
    epochs: int,
    batch_size: int,
    seed: int,
    on_epoch: Callable[[int, dict[str, float]], None],
) -> tf.keras.Model:
    """Trains the model `build()` makes (in the strategy's scope) for `epochs` of ceil(rows / batch_size) steps;
    `on_epoch(epoch, {loss, accuracy, val_loss, val_accuracy})` after each (training figures over every replica)."""
    x, y = train_data
    with strategy.scope():
        model, optimizer = build()
        optimizer.build(model.trainable_variables)
    per_example = tf.keras.losses.SparseCategoricalCrossentropy(reduction="none")

    def step(features, labels):
        with tf.GradientTape() as tape:
            probabilities = model(features, training=True)
            losses = per_example(labels, probabilities)
            loss = tf.nn.compute_average_loss(losses, global_batch_size=batch_size)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        correct = tf.cast(tf.equal(tf.argmax(probabilities, axis=1), labels), tf.float32)
        return tf.stack([tf.reduce_sum(losses), tf.reduce_sum(correct), tf.cast(tf.size(labels), tf.float32)])

    @tf.function
    def train_step(batch):
        return strategy.reduce("SUM", strategy.run(step, args=batch), axis=None)

    batches = _distributed_batches(strategy, x, y, batch_size, seed)
    steps = math.ceil(len(x) / batch_size)
    for epoch in range(1, epochs + 1):
        totals = np.zeros(3)
        for _ in range(steps):
            totals += train_step(next(batches)).numpy()
        val_loss, val_accuracy, _ = evaluate(model, *validation_data)
        on_epoch(
            epoch,
            {
                "loss": totals[0] / totals[2],
                "accuracy": totals[1] / totals[2],
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
            },
        )
    return model
