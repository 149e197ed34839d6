"""The learning curve recorded during training: `ValidationRMSE` and `--validate-every`."""

import csv
import json

import keras
import numpy as np
import pytest

from keras_da.evaluation import evaluate_methods
from keras_da.presets import get_preset
from keras_da.training.run import (
    prepare_history_csv,
    recorded_train_seconds,
    train_from_preset,
)
from keras_da.training.validation import ValidationRMSE, read_learning_curve


def read_rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def curve_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("curve")
    preset = get_preset("tiny")
    preset["training"].update({"steps": 30, "steps_per_epoch": 10})
    probe = []

    class Probe(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            probe.append(self.model)

    train_from_preset(
        preset, str(output), verbose=0, extra_callbacks=[Probe()], jit_compile=False, validate_every=2,
        validation_runs=3, validation_cycles=240,
    )
    return preset, output, probe[0]


def test_curve_columns_and_counts(curve_run):
    preset, output, _ = curve_run
    rows = read_rows(output / "history.csv")
    assert len(rows) == 3
    training = preset["training"]
    cycles = [float(row["cycles_seen"]) for row in rows]
    per_epoch = training["steps_per_epoch"] * training["batch_size"] * training["window_length"]
    assert cycles == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    seconds = [float(row["train_seconds"]) for row in rows]
    assert 0 < seconds[0] < seconds[1] < seconds[2]
    scored = [np.isfinite(float(row["val_armse"])) for row in rows]
    # every second epoch, and always the last
    assert scored == [False, True, True]


def test_last_score_matches_evaluation(curve_run):
    preset, output, model = curve_run
    rows = read_rows(output / "history.csv")
    callback = ValidationRMSE(
        model.dynamics, model.observation_operator, model.state_dim, num_runs=3,
        num_cycles=240, burn_in=80, spin_up_cycles=preset["spin_up_cycles"],
        initial_spread=preset["evaluation"]["initial_spread"],
        seed=preset["evaluation"]["seed"] + 1000,
    )
    result = evaluate_methods(
        {"a": (model.analysis, model.ensemble_size)}, model.dynamics, callback.twin, 80,
        initial_spread=preset["evaluation"]["initial_spread"], seed=callback.seed,
        keep_series=False,
    )["a"]
    np.testing.assert_allclose(float(rows[-1]["val_armse"]), result["armse"], rtol=1e-4)
    np.testing.assert_allclose(float(rows[-1]["val_armse_sem"]), result["armse_stderr"], rtol=1e-3)


def test_recorded_seconds_of_a_resumed_run(tmp_path):
    path = tmp_path / "history.csv"
    assert recorded_train_seconds(str(path)) == 0.0
    path.write_text("epoch,loss,train_seconds\n0,1.0,12.5\n1,0.9,30.25\n")
    assert recorded_train_seconds(str(path)) == 30.25
    path.write_text("epoch,loss\n0,1.0\n")
    assert recorded_train_seconds(str(path)) == 0.0


@pytest.mark.parametrize(
    "kwargs, message",
    [({"num_runs": 0}, "num_runs"), ({"every": 0}, "every"), ({"burn_in": 300}, "burn_in")],
)
def test_bad_settings_are_rejected(kwargs, message):
    from keras_da.experiment import build_dynamics, build_observation_operator

    preset = get_preset("tiny")
    settings = dict(num_runs=2, num_cycles=300, burn_in=100, spin_up_cycles=10)
    settings.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ValidationRMSE(
            build_dynamics(preset["model"]), build_observation_operator(preset["observation"]),
            40, **settings,
        )


def test_curve_reader_and_plot(curve_run, tmp_path):
    from keras_da.plotting import plot_learning_curve
    from keras_da.training.validation import read_learning_curve

    _, output, _ = curve_run
    curve = read_learning_curve(str(output / "history.csv"))
    assert [row["epoch"] for row in curve] == [2, 3]
    figure = tmp_path / "curve.png"
    plot_learning_curve(curve, str(figure), references={"3D-Var": 0.40})
    assert figure.stat().st_size > 0
    with pytest.raises(ValueError, match="--validate-every"):
        plot_learning_curve([], str(tmp_path / "empty.png"))


def test_recorded_seconds_skip_missing_values(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,train_seconds\n0,1.0,12.5\n1,0.9,NA\n2,0.8,\n")
    assert recorded_train_seconds(str(path)) == 12.5


def test_curve_reader_keeps_diverged_scores(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(
        "epoch,cycles_seen,train_seconds,val_armse,val_armse_sem\n"
        "0,10,1.0,nan,nan\n1,20,2.0,inf,inf\n2,30,3.0,NA,NA\n3,40,4.0,,\n4,50,5.0,0.5,0.01\n"
    )
    curve = read_learning_curve(str(path))
    assert [row["epoch"] for row in curve] == [2, 5]
    assert curve[0]["val_armse"] == float("inf")


def test_history_trimmed_to_checkpoint(tmp_path):
    path = tmp_path / "history.csv"
    # Rows of epochs 0 to 2, the last written before its checkpoint, then a partly written row.
    path.write_text("epoch,loss\n0,1.0\n1,0.9\n2,0.8\n3,0.")
    prepare_history_csv(str(path), 2)
    assert [row["epoch"] for row in read_rows(path)] == ["0", "1"]
    prepare_history_csv(str(path), 0)
    assert not path.exists()


class Interrupt(Exception):
    pass


class InterruptAfterEpoch(keras.callbacks.Callback):
    """Raise after `epoch` epochs, once their checkpoint is written, like a killed process."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise Interrupt()


def train_interrupted(output, first_validation, second_validation):
    """Train 3 epochs of the tiny preset, stopped after the first and resumed."""
    preset = get_preset("tiny")
    preset["training"].update({"steps": 30, "steps_per_epoch": 10})
    settings = {"validation_runs": 2, "validation_cycles": 120, "jit_compile": False, "verbose": 0}
    with pytest.raises(Interrupt):
        train_from_preset(
            preset, str(output), validate_every=first_validation,
            extra_callbacks=[InterruptAfterEpoch(1)], **settings,
        )
    assert (output / "backup" / "checkpoint.json").is_file()
    train_from_preset(preset, str(output), validate_every=second_validation, **settings)
    return read_rows(output / "history.csv")


def test_resume_adds_validation_columns(tmp_path):
    rows = train_interrupted(tmp_path, 0, 1)
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert rows[0]["val_armse"] == ""
    assert rows[0]["train_seconds"] == ""
    losses = [float(row["loss"]) for row in rows]
    assert all(0 < loss < 10 for loss in losses)
    curve = read_learning_curve(str(tmp_path / "history.csv"))
    assert [row["epoch"] for row in curve] == [2, 3]
    assert [row["cycles_seen"] for row in curve] == [1600.0, 2400.0]


def test_resume_without_validation_keeps_curve(tmp_path):
    rows = train_interrupted(tmp_path, 1, 0)
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert rows[1]["val_armse"] == ""
    assert float(rows[1]["loss"]) > 0
    curve = read_learning_curve(str(tmp_path / "history.csv"))
    assert [row["epoch"] for row in curve] == [1]
    assert recorded_train_seconds(str(tmp_path / "history.csv")) == curve[0]["train_seconds"]


def test_resume_continues_train_seconds(tmp_path):
    rows = train_interrupted(tmp_path, 1, 1)
    seconds = [float(row["train_seconds"]) for row in rows]
    assert 0 < seconds[0] < seconds[1] < seconds[2]
    assert all(np.isfinite(float(row["val_armse"])) for row in rows)


def test_fresh_run_replaces_old_history(curve_run, tmp_path):
    preset, output, _ = curve_run
    (tmp_path / "history.csv").write_text((output / "history.csv").read_text())
    preset = get_preset("tiny")
    preset["training"].update({"steps": 10, "steps_per_epoch": 10})
    train_from_preset(preset, str(tmp_path), verbose=0, jit_compile=False)
    assert [row["epoch"] for row in read_rows(tmp_path / "history.csv")] == ["0"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"validate_every": -1}, "validate_every"),
        ({"validate_every": 1, "validation_cycles": 0}, "validation_cycles"),
        ({"validate_every": 1, "validation_runs": 0}, "validation_runs"),
    ],
)
def test_bad_validation_options_fail_early(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_from_preset(get_preset("tiny"), str(tmp_path / "run"), **kwargs)
    assert not (tmp_path / "run").exists()


def test_early_stop_scores_diverged_filter():
    from keras_da.training.run import build_learned_filter

    model = build_learned_filter(get_preset("tiny"))
    callback = ValidationRMSE(
        model.dynamics, model.observation_operator, model.state_dim, num_runs=2, num_cycles=60,
        burn_in=10, spin_up_cycles=10, every=5,
    )
    callback.set_model(model)
    callback.set_params({"epochs": 10})
    rng = np.random.default_rng(0)
    model.analysis.set_weights(
        [w + 5 * rng.standard_normal(w.shape).astype(w.dtype) for w in model.analysis.get_weights()]
    )
    callback.on_train_begin()
    logs = {}
    callback.on_epoch_end(0, logs)
    assert np.isnan(logs["val_armse"])  # not scored
    model.stop_training = True
    callback.on_epoch_end(1, logs)
    assert logs["val_armse"] == float("inf")


def test_plot_draws_every_reference(tmp_path, monkeypatch):
    import matplotlib.axes

    from keras_da.plotting import plot_learning_curve

    curve = [
        {"train_seconds": 10.0, "cycles_seen": 100.0, "val_armse": float("inf"), "val_armse_sem": float("inf")},
        {"train_seconds": 20.0, "cycles_seen": 200.0, "val_armse": 0.5, "val_armse_sem": 0.01},
    ]
    references = {f"method {i}": 0.3 + 0.01 * i for i in range(6)}
    labels = []
    axhline = matplotlib.axes.Axes.axhline

    def record_axhline(self, y, *args, **kwargs):
        labels.append(kwargs.get("label"))
        return axhline(self, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "axhline", record_axhline)
    plot_learning_curve(curve, str(tmp_path / "curve.png"), references=references)
    assert (tmp_path / "curve.png").stat().st_size > 0
    assert len(labels) == 2 * len(references)  # one line per reference on each panel


def test_warm_start_copies_analysis_weights(curve_run, tmp_path):
    from keras_da.training.run import build_learned_filter, copy_analysis_weights

    preset, output, trained = curve_run
    model = build_learned_filter(preset)
    copy_analysis_weights(str(output / "model.keras"), model)
    for copied, source in zip(model.analysis.get_weights(), trained.analysis.get_weights()):
        np.testing.assert_array_equal(copied, source)


def test_warm_start_rejects_other_network(curve_run):
    from keras_da.training.run import build_learned_filter, copy_analysis_weights

    preset, output, _ = curve_run
    wider = json.loads(json.dumps(preset))
    wider["network"]["filters"] = 2 * preset["network"]["filters"]
    with pytest.raises(ValueError, match="does not match"):
        copy_analysis_weights(str(output / "model.keras"), build_learned_filter(wider))
    with pytest.raises(FileNotFoundError, match="initial weights"):
        copy_analysis_weights(str(output / "missing.keras"), build_learned_filter(preset))
