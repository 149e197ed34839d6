"""Resuming an interrupted training run from its last checkpoint."""

import csv
import json
import signal
from pathlib import Path

import keras
import numpy as np
import pytest
from tiny_models import tiny_filter
from training_subprocess import load_arrays, run_training

from keras_da.training import run as run_module
from keras_da.training.run import AtomicBackupAndRestore

# 3 epochs of 2 steps. The first process is killed after step 5, inside the third epoch, so the
# last checkpoint is that of epoch 2 (4 steps), and the resumed run repeats step 5.
SCHEDULE = {"steps": 6, "steps_per_epoch": 2}
KILLED_AFTER = 5


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A run killed with SIGKILL after step 5 and resumed, and the same run uninterrupted."""
    directory = tmp_path_factory.mktemp("resume")
    killed = dict(
        SCHEDULE,
        output=directory / "resumed",
        weights=directory / "never.npz",
        kill_after_steps=KILLED_AFTER,
    )
    code, output = run_training([killed], directory, timeout=300)
    metadata = directory / "resumed" / "backup" / "checkpoint.json"
    assert metadata.is_file(), output[-4000:]
    checkpoint = json.loads(metadata.read_text())
    rows_before = (directory / "resumed" / "history.csv").read_text().splitlines()

    runs = [
        dict(SCHEDULE, output=directory / "resumed", weights=directory / "resumed.npz"),
        dict(SCHEDULE, output=directory / "reference", weights=directory / "reference.npz"),
    ]
    resumed_code, resumed_output = run_training(runs, directory, timeout=300)
    assert resumed_code == 0, resumed_output[-4000:]
    return {
        "directory": directory,
        "killed_code": code,
        "checkpoint": checkpoint,
        "rows_before": rows_before,
    }


def test_killed_run_leaves_last_epoch_checkpoint(interrupted_run):
    assert interrupted_run["killed_code"] == -signal.SIGKILL
    expected = {"epoch": 2, "weights": "epoch-000002.weights.h5", "window_counter": 4}
    assert interrupted_run["checkpoint"] == expected
    assert not (interrupted_run["directory"] / "never.npz").exists()


def test_resumed_run_ends_with_uninterrupted_weights(interrupted_run):
    directory = interrupted_run["directory"]
    resumed = load_arrays(directory / "resumed.npz", "weight")
    reference = load_arrays(directory / "reference.npz", "weight")
    # Every step is deterministic on CPU, so the restored state (weights, pool, window counter,
    # optimizer moments and iteration count) leads to bitwise the same end.
    assert int(resumed[2]) == 6
    for weight, expected in zip(resumed, reference):
        np.testing.assert_array_equal(weight, expected)


def test_resumed_run_ends_with_uninterrupted_optimizer_state(interrupted_run):
    directory = interrupted_run["directory"]
    resumed = load_arrays(directory / "resumed.npz", "optimizer")
    reference = load_arrays(directory / "reference.npz", "optimizer")
    assert len(resumed) == len(reference) > 2
    for variable, expected in zip(resumed, reference):
        np.testing.assert_array_equal(variable, expected)


def test_resumed_run_continues_the_epoch_count(interrupted_run):
    assert len(interrupted_run["rows_before"]) == 3  # header and epochs 0 and 1
    with open(interrupted_run["directory"] / "resumed" / "history.csv") as stream:
        epochs = [int(row["epoch"]) for row in csv.DictReader(stream)]
    assert epochs == [0, 1, 2]
    assert not (interrupted_run["directory"] / "resumed" / "backup").exists()


# ---------------------------------------------------------------------------- atomic checkpoints
@pytest.fixture
def model_and_backup(tmp_path):
    model = tiny_filter(pool_size=32)
    model.optimizer.build(model.trainable_variables)
    backup = AtomicBackupAndRestore(tmp_path / "backup")
    backup.set_model(model)
    return model, backup


def shift_all_variables(model, amount):
    for variable in model.weights + model.optimizer.variables:
        if variable.dtype in ("float32", "int64"):
            variable.assign(variable + keras.ops.cast(amount, variable.dtype))


def snapshot(model):
    return [np.asarray(v).copy() for v in model.weights + model.optimizer.variables]


def test_checkpoint_holds_optimizer_and_pool(model_and_backup):
    model, backup = model_and_backup
    shift_all_variables(model, 1)
    saved = snapshot(model)
    backup.save(1)
    shift_all_variables(model, 2)
    assert backup.restore() == 1
    for value, expected in zip(snapshot(model), saved):
        np.testing.assert_array_equal(value, expected)


def test_crash_before_commit_keeps_previous_checkpoint(model_and_backup, monkeypatch):
    model, backup = model_and_backup
    backup.save(1)
    saved = snapshot(model)
    shift_all_variables(model, 3)

    # A crash after the new weights file is in place but before checkpoint.json names it.
    def crash(path, content):
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(run_module, "_write_json_atomically", crash)
    with pytest.raises(KeyboardInterrupt):
        backup.save(2)
    assert (Path(backup.backup_dir) / "epoch-000002.weights.h5").is_file()

    assert backup.restore() == 1
    for value, expected in zip(snapshot(model), saved):
        np.testing.assert_array_equal(value, expected)


def test_partial_files_are_ignored_and_cleaned(model_and_backup):
    model, backup = model_and_backup
    backup.save(1)
    # What a process killed while writing leaves behind: truncated temporary files.
    (Path(backup.backup_dir) / "partial-epoch-000002.weights.h5").write_bytes(b"\x89HDF\r\n")
    (Path(backup.backup_dir) / "checkpoint.json.partial").write_text('{"epoch": 2, "wei')
    assert backup.restore() == 1
    backup.save(2)
    assert sorted(p.name for p in Path(backup.backup_dir).iterdir()) == [
        "checkpoint.json",
        "epoch-000002.weights.h5",
    ]


def test_restore_without_checkpoint_returns_zero(model_and_backup):
    _, backup = model_and_backup
    assert backup.restore() == 0
