"""Data-parallel training of a `LearnedFilter` with `tf.distribute` (TensorFlow backend only).

Design, in short (docs/deployment.md has the long form):

- Each replica trains on its own contiguous slice of the global batch of pool trajectories, so
  the B trajectories of one step are split over the R replicas (B must be a multiple of R).
- Each replica scales its summed per-trajectory loss by 1/B (the global batch size). Keras's
  optimizer sums gradients over replicas, so the applied gradient equals the single-device
  gradient of the mean loss over the global batch.
- The pool variables keep Keras's default aggregation `"none"`: TensorFlow then applies an
  update made in replica context to that replica's own copy only. After each step the replicas
  all-gather the new window ends of the global batch and every replica writes the same rows, so
  all copies of the pool stay identical without all-reducing the whole pool.
- Under `MultiWorkerMirroredStrategy`, Keras 3 reduces per-replica step outputs with
  `strategy.reduce("MEAN", value, axis=0)`, which fails for scalars. The train step then returns
  its metrics with shape `(1,)`, which that reduction turns back into scalars.
"""

import json
import logging
import os
import tempfile

import tensorflow as tf

logger = logging.getLogger(__name__)

# Names accepted by `make_strategy` and by `keras-da train --strategy`.
STRATEGIES = ("default", "mirrored", "multi-worker")


def make_strategy(name="default"):
    """Create the `tf.distribute.Strategy` called `name`.

    Create the strategy before any other TensorFlow call of the program: the multi-worker
    strategy configures collective operations, which TensorFlow only allows before its runtime
    starts.

    Args:
        name: one of `("default", "mirrored", "multi-worker")`. `"default"` is the strategy
            TensorFlow uses outside any scope (one device). `"mirrored"` replicates over every
            local GPU, or the CPU when there is none. `"multi-worker"` reads the cluster from the
            `TF_CONFIG` environment variable and replicates over the local devices of every
            worker.

    Returns:
        A `tf.distribute.Strategy`.
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}, received strategy={name!r}.")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if "TF_CONFIG" not in os.environ:
        logger.warning(
            "TF_CONFIG is not set: the multi-worker strategy runs as a single worker. Set "
            "TF_CONFIG on every worker to train on a cluster."
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def replica_position():
    """Return `(replica_id, num_replicas)` of the replica running the calling code.

    `num_replicas` is a Python int, 1 outside any strategy. `replica_id` is an int64 scalar
    tensor under a strategy and the Python int 0 on a single replica.
    """
    context = tf.distribute.get_replica_context()
    if context is None:
        raise RuntimeError(
            "The train step runs in cross-replica context, where no replica owns a slice of the "
            "batch. Call it through `model.fit` or `strategy.run(model.train_step, ...)`."
        )
    num_replicas = context.num_replicas_in_sync
    if num_replicas == 1:
        return 0, 1
    return tf.cast(context.replica_id_in_sync_group, tf.int64), num_replicas


def check_replica_batch(batch_size, num_replicas):
    """Return the per-replica batch size, or raise `ValueError` if B does not split evenly."""
    if batch_size % num_replicas:
        raise ValueError(
            f"`batch_size` ({batch_size}) must be a multiple of the number of replicas "
            f"({num_replicas}) so that every replica trains on the same number of trajectories. "
            f"Choose batch_size={num_replicas * max(1, batch_size // num_replicas)} or change "
            "the number of devices or workers."
        )
    return batch_size // num_replicas


def gather_replicas(tensor):
    """Concatenate `tensor` from every replica along axis 0, in replica order.

    On a single replica the tensor is returned as it is.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tensor
    return context.all_gather(tensor, axis=0)


def is_multi_worker(strategy):
    """Return whether `strategy` is a multi-worker strategy running on more than one worker."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    return sum(len(tasks) for tasks in cluster.values()) > 1


def metric_logs(metrics, strategy):
    """Return the train step's `{name: result}` logs, shaped for `strategy`'s reduction.

    Keras 3.15 reduces step outputs of a multi-worker strategy with
    `strategy.reduce("MEAN", value, axis=0)`, which raises on scalars. Results of shape `(1,)`
    reduce to the scalar mean over replicas. The epoch logs are read from the metric objects
    themselves, which sum their variables over replicas, so only the per-step progress bar shows
    the replica mean.
    """
    if is_multi_worker(strategy):
        return {m.name: tf.reshape(m.result(), (1,)) for m in metrics}
    return {m.name: m.result() for m in metrics}


def dummy_dataset(strategy):
    """Return the endless placeholder dataset `fit` iterates while samples are made in the step.

    Under a strategy with R replicas each element is a zero vector of length R, so every replica
    receives one placeholder. Auto-sharding is off: the elements carry no data, and sharding an
    in-memory dataset by files fails.
    """
    num_replicas = strategy.num_replicas_in_sync
    if num_replicas == 1 and not is_multi_worker(strategy):
        return tf.data.Dataset.from_tensors(0.0).repeat()
    dataset = tf.data.Dataset.from_tensors(tf.zeros((num_replicas,))).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)


def cluster_task():
    """Return `(task_type, task_id)` of this process from `TF_CONFIG`, or `(None, None)`."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    return task.get("type"), task.get("index")


def is_chief(strategy=None):
    """Return whether this process writes the run's files (model, logs, checkpoints).

    The chief is the `"chief"` task if the cluster has one, else worker 0; a process without
    `TF_CONFIG` is its own chief. With `strategy` given, its cluster resolver is used instead of
    reading `TF_CONFIG`.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is not None and resolver.task_type is not None:
        task_type, task_id = resolver.task_type, resolver.task_id
        cluster = resolver.cluster_spec().as_dict()
    else:
        task_type, task_id = cluster_task()
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("cluster", {})
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def worker_path(path, strategy=None):
    """Return `path` on the chief, and a path in a fresh temporary directory on other workers.

    Every worker takes part in saving, because reading a variable that is synchronised on read
    is a collective operation that needs every worker. Only the chief's copy is kept. Delete
    the temporary directory of a non-chief worker with `remove_worker_path`.
    """
    if is_chief(strategy):
        return path
    directory = tempfile.mkdtemp(prefix="keras_da_worker_")
    return os.path.join(directory, os.path.basename(path))


def remove_worker_path(path, strategy=None):
    """Delete what a non-chief worker wrote to a path from `worker_path`; no-op on the chief."""
    if is_chief(strategy):
        return
    import shutil

    shutil.rmtree(os.path.dirname(path), ignore_errors=True)
