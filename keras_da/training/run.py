"""Train a learned filter from a preset dict, with checkpoints that survive interruption."""

import csv
import json
import logging
import os
import shutil

import keras
import numpy as np

from keras_da.experiment import build_dynamics, build_learned_analysis, build_observation_operator
from keras_da.training import distribute
from keras_da.training.trainer import LearnedFilter
from keras_da.training.validation import ValidationRMSE, parse_csv_number, read_history_csv
from keras_da.twin import check_positive_int

logger = logging.getLogger(__name__)


def build_learned_filter(preset, mixed_precision="none"):
    """Return an uncompiled `LearnedFilter` for a preset dict.

    Args:
        preset: a preset dict (see `keras_da.presets`).
        mixed_precision: compute dtype of the analysis network, `"none"`, `"bfloat16"` or
            `"float16"` (see `LearnedFilter`).
    """
    training = preset["training"]
    observation_operator = build_observation_operator(preset["observation"])
    return LearnedFilter(
        dynamics=build_dynamics(preset["model"]),
        analysis=build_learned_analysis(preset["network"], observation_operator),
        state_dim=preset["model"]["state_dim"],
        ensemble_size=training["ensemble_size"],
        pool_size=training["pool_size"],
        batch_size=training["batch_size"],
        window_length=training["window_length"],
        initial_spread=training["initial_spread"],
        spin_up_cycles=preset["spin_up_cycles"],
        seed=training["seed"],
        loss=training.get("loss", "supervised"),
        mixed_precision=mixed_precision,
    )


def make_optimizer(training):
    """Adam with a cosine decay from `learning_rate` to `final_learning_rate` over `steps`."""
    initial = training["learning_rate"]
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=initial,
        decay_steps=training["steps"],
        alpha=training["final_learning_rate"] / initial,
    )
    return keras.optimizers.Adam(learning_rate=schedule)


class AtomicBackupAndRestore(keras.callbacks.Callback):
    """Back up the whole training state after every epoch, atomically, and restore it on restart.

    Keras 3.15's `keras.callbacks.BackupAndRestore` saves the model weights and the optimizer
    variables through `Model.save_weights`, but it writes the weights file in place and the
    epoch number to a second file afterwards. A process killed while writing can leave an
    unreadable file, or new weights next to the old epoch number. This callback
    writes each checkpoint to a temporary file, flushes it to disk and renames it into place with
    `os.replace`, then commits it by atomically replacing `checkpoint.json`, which names the
    weights file and the epoch. A crash at any moment leaves the previous complete checkpoint.

    A checkpoint contains everything `Model.save_weights` writes: the trainable weights, the
    optimizer variables (moments, iteration count, hence the learning-rate schedule's position)
    and, for a `LearnedFilter`, the trajectory pool and the window counter, which keys the
    observation noise. A restored run therefore continues the interrupted one step for step.
    Checkpoints fall on epoch ends, so the epoch length sets how much work a crash can lose.

    Under a multi-worker strategy every worker saves, because reading a variable that is
    synchronised on read is a collective operation. Only the chief writes to `backup_dir`, and
    all workers restore from it, so it must be on a file system every worker reads.

    Args:
        backup_dir: directory of the checkpoints, used by this callback alone.
        delete_checkpoint: whether to delete `backup_dir` when `fit` ends. Default `True`.

    Example:
        >>> backup = AtomicBackupAndRestore("runs/tiny/backup")
        >>> initial_epoch = backup.restore(model)  # 0 when there is no checkpoint
        >>> model.fit(steps_per_epoch=20, epochs=5, initial_epoch=initial_epoch,
        ...           callbacks=[backup])
    """

    METADATA = "checkpoint.json"

    def __init__(self, backup_dir, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError(f"`backup_dir` must be a directory path, received {backup_dir!r}.")
        self.backup_dir = os.fspath(backup_dir)
        self.delete_checkpoint = delete_checkpoint
        self._restored_model = None

    @property
    def metadata_path(self):
        return os.path.join(self.backup_dir, self.METADATA)

    def read_metadata(self):
        """Return the committed checkpoint's metadata dict, or `None` when there is none."""
        if not os.path.isfile(self.metadata_path):
            return None
        with open(self.metadata_path) as stream:
            return json.load(stream)

    def restore(self, model=None):
        """Load the last committed checkpoint into `model` and return the epoch to continue from.

        Args:
            model: the model to restore. Default: the model `fit` attached to this callback.

        Returns:
            The number of completed epochs recorded in the checkpoint, 0 when there is none.
        """
        model = model if model is not None else self.model
        metadata = self.read_metadata()
        if metadata is None:
            return 0
        weights = os.path.join(self.backup_dir, metadata["weights"])
        if model.optimizer is not None and not model.optimizer.built:
            # The optimizer's variables must exist, as mirrored variables under a strategy,
            # before their saved values can be loaded.
            with model.distribute_strategy.scope():
                model.optimizer.build(model.trainable_variables)
        model.load_weights(weights)
        self._restored_model = model
        logger.info("Restored the training state of epoch %d from %s.", metadata["epoch"], weights)
        return int(metadata["epoch"])

    def on_train_begin(self, logs=None):
        if self._restored_model is self.model:
            return
        epoch = self.restore()
        if epoch:
            # Keras's own BackupAndRestore starts `fit` at the restored epoch through this
            # attribute; `restore()` before `fit(initial_epoch=...)` avoids relying on it.
            self.model._initial_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.save(epoch + 1)

    def on_train_end(self, logs=None):
        self._restored_model = None
        if getattr(self.model, "_initial_epoch", None):
            self.model._initial_epoch = None
        if self.delete_checkpoint and distribute.is_chief(self.model.distribute_strategy):
            shutil.rmtree(self.backup_dir, ignore_errors=True)

    def save(self, epoch):
        """Write the model's training state as the checkpoint of `epoch` completed epochs."""
        strategy = self.model.distribute_strategy
        name = f"epoch-{epoch:06d}.weights.h5"
        if not distribute.is_chief(strategy):
            path = distribute.worker_path(os.path.join(self.backup_dir, name), strategy)
            self.model.save_weights(path)
            distribute.remove_worker_path(path, strategy)
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        # `save_weights` requires the ".weights.h5" suffix, so the prefix marks the partial file.
        partial = os.path.join(self.backup_dir, f"partial-{name}")
        self.model.save_weights(partial, overwrite=True)
        _flush_to_disk(partial)
        os.replace(partial, os.path.join(self.backup_dir, name))
        metadata = {"epoch": epoch, "weights": name}
        counter = getattr(self.model, "window_counter", None)
        if counter is not None:
            metadata["window_counter"] = int(counter.numpy())
        _write_json_atomically(self.metadata_path, metadata)
        for other in os.listdir(self.backup_dir):
            if other.endswith(".weights.h5") and other != name:
                os.remove(os.path.join(self.backup_dir, other))


def _flush_to_disk(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_json_atomically(path, content):
    partial = f"{path}.partial"
    with open(partial, "w") as stream:
        json.dump(content, stream)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, path)
    if hasattr(os, "O_DIRECTORY"):
        # Flushing the directory makes the rename itself survive a power loss, not only a crash.
        descriptor = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _write_history_csv(path, columns, rows):
    partial = f"{path}.partial"
    with open(partial, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, path)


def prepare_history_csv(path, initial_epoch):
    """Make a run's history.csv hold exactly the epochs before `initial_epoch`.

    A fresh run (`initial_epoch` 0) deletes the history of an earlier run in the same directory.
    A resumed run drops the rows of epochs after its checkpoint, which a run killed between
    writing its history row and committing its checkpoint leaves behind, and a partly written
    last row.
    """
    if initial_epoch == 0:
        if os.path.isfile(path):
            os.remove(path)
        return
    columns, rows = read_history_csv(path)
    earlier_rows = [
        row for row in rows if _epoch_of(row) is not None and _epoch_of(row) < initial_epoch
    ]
    if len(earlier_rows) != len(rows):
        _write_history_csv(path, columns, earlier_rows)


def _epoch_of(row):
    try:
        return int(row.get("epoch"))
    except (TypeError, ValueError):
        return None


class HistoryCSVLogger(keras.callbacks.Callback):
    """Append each epoch's logs to a CSV file, adding a column when a new log key appears.

    Keras 3.15's `CSVLogger(append=True)` keeps the header of an existing file but writes its
    own columns under it, so a resumed run with other log keys (one resumed with or without
    `--validate-every`) shifts its values into the wrong columns. This logger rewrites the file
    with the union of the columns instead, and leaves the cells of missing keys empty. Each row
    is synced to disk (`os.fsync`) before the callbacks after this one write the checkpoint.
    """

    def __init__(self, path):
        super().__init__()
        self.path = os.fspath(path)

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch, **(logs or {})}
        columns, rows = read_history_csv(self.path)
        new_keys = sorted(key for key in row if key not in columns)
        if new_keys:
            if not columns:
                new_keys = ["epoch"] + [key for key in new_keys if key != "epoch"]
            _write_history_csv(self.path, columns + new_keys, rows + [row])
            return
        with open(self.path, "a", newline="") as stream:
            csv.DictWriter(stream, fieldnames=columns, restval="").writerow(row)
            stream.flush()
            os.fsync(stream.fileno())


def recorded_train_seconds(history_csv):
    """Return the last `train_seconds` in a run's history.csv, 0.0 when none is recorded."""
    _, rows = read_history_csv(history_csv)
    values = [parse_csv_number(row.get("train_seconds")) for row in rows]
    values = [value for value in values if np.isfinite(value)]
    return values[-1] if values else 0.0


def copy_analysis_weights(source, model):
    """Set `model`'s analysis weights to those of `source`, a `LearnedFilter` or its `.keras` path.

    Used to continue training a finished run with a new schedule (a warm start): the optimizer
    state and the pool start afresh, only the network's weights carry over. Also used to copy
    a trained network into a filter with a smaller pool for shipping.
    """
    described = "the source filter"
    if isinstance(source, (str, os.PathLike)):
        described = repr(os.fspath(source))
        if not os.path.isfile(source):
            raise FileNotFoundError(
                f"No model file at {source!r} to take initial weights from. Pass the "
                "model.keras of an earlier `keras-da train` run."
            )
        source = keras.models.load_model(source, compile=False)
    if not model.analysis.built:
        # One cycle on a placeholder input creates the analysis weights.
        observations = np.zeros((1, 1, model.cell.observation_dim), "float32")
        ensemble = np.full((1, model.ensemble_size, model.state_dim), 8.0, "float32")
        model((observations, ensemble))
    expected = [tuple(w.shape) for w in model.analysis.weights]
    found = [tuple(w.shape) for w in source.analysis.weights]
    if expected != found or type(source.analysis) is not type(model.analysis):
        raise ValueError(
            f"The analysis of {described} ({type(source.analysis).__name__}, weight shapes "
            f"{found}) does not match the network of this run ({type(model.analysis).__name__}, "
            f"{expected}). Train with the same network options as that run."
        )
    model.analysis.set_weights(source.analysis.get_weights())


def check_resumed_position(model, epoch, steps_per_epoch):
    """Raise `ValueError` if a restored model's step count does not match `epoch` epochs."""
    done = int(model.window_counter.numpy())
    if done != epoch * steps_per_epoch:
        raise ValueError(
            f"The checkpoint records {epoch} completed epochs but {done} training steps, which "
            f"does not match steps_per_epoch={steps_per_epoch}. Resume with the "
            "steps_per_epoch of the interrupted run (see OUTPUT/preset.json)."
        )


def train_from_preset(
    preset,
    output,
    tensorboard=False,
    verbose=1,
    extra_callbacks=(),
    strategy="default",
    jit_compile=True,
    mixed_precision="none",
    validate_every=0,
    validation_runs=8,
    validation_cycles=1500,
    steps_per_execution=1,
):
    """Train a learned filter as a preset specifies and save it to `output/model.keras`.

    Checkpoints go to `output/backup` after every epoch through `AtomicBackupAndRestore`. They
    contain the model weights including the trajectory pool and window counter, the optimizer
    state and the epoch, and a rerun with the same `output` resumes from the last one. The backup directory is removed when
    training completes.

    Args:
        preset: a preset dict (see `keras_da.presets`).
        output: directory of the run's files.
        tensorboard: whether to write TensorBoard logs to `output/logs`.
        verbose: Keras progress output, 0, 1 or 2.
        extra_callbacks: more Keras callbacks, called after the built-in ones.
        strategy: a `tf.distribute.Strategy`, or the name of one for `make_strategy`:
            `"default"`, `"mirrored"` or `"multi-worker"`. Only the chief worker writes files.
        jit_compile: whether to compile the train step with XLA. Default `True`: after a
            longer first step (compiling), XLA trained the "lorenz96" preset about twice as fast
            as graph mode on the 2-core CPU measured in docs/deployment.md.
        mixed_precision: compute dtype of the analysis network, `"none"`, `"bfloat16"` or
            `"float16"` (see `LearnedFilter`).
        validate_every: score the filter every this many epochs (and after the last) on a
            fixed twin experiment of `validation_runs` runs of `validation_cycles` cycles (the
            first third, at most 500, left out), recording `val_armse`, `val_armse_sem`,
            `train_seconds` and `cycles_seen` in `output/history.csv`
            (`keras_da.training.validation.ValidationRMSE`). 0 turns scoring off.
        steps_per_execution: training steps run per call into the compiled train function
            (`keras.Model.compile`). Fewer calls leave less Python between steps: 10 made a
            step of the `lorenz96_accurate` network 8 % faster on the CPU of
            docs/benchmarks.md. Must divide `steps_per_epoch`.

    Returns:
        The path of the saved `.keras` file.
    """
    check_positive_int("validate_every", validate_every, minimum=0)
    if validate_every:
        check_positive_int("validation_runs", validation_runs)
        check_positive_int("validation_cycles", validation_cycles)
    if isinstance(strategy, str):
        # Created first: a multi-worker strategy must exist before TensorFlow's runtime starts.
        strategy = distribute.make_strategy(strategy)
    training = preset["training"]
    steps, per_epoch = training["steps"], training["steps_per_epoch"]
    if steps % per_epoch:
        raise ValueError(
            f"`steps` ({steps}) must be a multiple of `steps_per_epoch` ({per_epoch}) so that "
            "checkpoints fall on the end of the schedule."
        )
    check_positive_int("steps_per_execution", steps_per_execution)
    if per_epoch % steps_per_execution:
        raise ValueError(
            f"`steps_per_execution` ({steps_per_execution}) must divide `steps_per_epoch` "
            f"({per_epoch}) so that every epoch ends on a whole call. Choose a divisor of "
            f"{per_epoch}."
        )
    chief = distribute.is_chief(strategy)
    os.makedirs(output, exist_ok=True)
    if chief:
        with open(os.path.join(output, "preset.json"), "w") as stream:
            json.dump(preset, stream, indent=2)

    keras.utils.set_random_seed(training["seed"])
    with strategy.scope():
        model = build_learned_filter(preset, mixed_precision=mixed_precision)
        model.compile(
            optimizer=make_optimizer(training), jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
        )

    backup = AtomicBackupAndRestore(os.path.join(output, "backup"))
    initial_epoch = backup.restore(model)
    if initial_epoch:
        check_resumed_position(model, initial_epoch, per_epoch)
    elif training.get("initial_weights"):
        logger.info("Starting from the analysis weights of %s.", training["initial_weights"])
        with strategy.scope():
            copy_analysis_weights(training["initial_weights"], model)
    history_csv = os.path.join(output, "history.csv")
    if chief:
        prepare_history_csv(history_csv, initial_epoch)
    initial_seconds = recorded_train_seconds(history_csv) if initial_epoch else 0.0
    if validate_every and initial_epoch and not initial_seconds:
        logger.warning(
            "%s records no train_seconds for the %d epochs before the checkpoint, because they "
            "ran without validation, so train_seconds counts only the epochs of this run.",
            history_csv, initial_epoch,
        )
    # The scoring and the history row of an epoch come before its checkpoint, so a run killed
    # before the checkpoint is committed repeats the whole epoch, row included.
    callbacks = []
    if validate_every:
        callbacks.append(
            ValidationRMSE(
                build_dynamics(preset["model"]),
                build_observation_operator(preset["observation"]),
                preset["model"]["state_dim"],
                num_runs=validation_runs,
                num_cycles=validation_cycles,
                burn_in=min(500, validation_cycles // 3),
                spin_up_cycles=preset["spin_up_cycles"],
                every=validate_every,
                initial_spread=preset["evaluation"]["initial_spread"],
                # Away from the seeds of `keras-da evaluate`, which draws its twin from
                # the evaluation seed and the next one.
                seed=preset["evaluation"]["seed"] + 1000,
                initial_seconds=initial_seconds,
            )
        )
    if chief:
        callbacks.append(HistoryCSVLogger(history_csv))
    callbacks += [backup, keras.callbacks.TerminateOnNaN()]
    if tensorboard and chief:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(output, "logs")))
    callbacks.extend(extra_callbacks)

    logger.info(
        "Training %s: %d steps of %d trajectories x %d cycles, pool of %d, network %s, "
        "%d replica(s), XLA %s, mixed precision %s.",
        preset["name"], steps, training["batch_size"], training["window_length"],
        training["pool_size"], preset["network"], strategy.num_replicas_in_sync,
        "on" if jit_compile else "off", mixed_precision,
    )
    if initial_epoch:
        logger.info("Resuming at epoch %d of %d.", initial_epoch + 1, steps // per_epoch)
    history = model.fit(
        steps_per_epoch=per_epoch,
        epochs=steps // per_epoch,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=verbose,
    )
    path = os.path.join(output, "model.keras")
    saved = distribute.worker_path(path, strategy)
    model.save(saved)
    distribute.remove_worker_path(saved, strategy)
    if chief:
        with open(os.path.join(output, "history.json"), "w") as stream:
            json.dump({k: [float(v) for v in vals] for k, vals in history.history.items()}, stream)
    return path
