"""The learning curve recorded during training: `ValidationRMSE` and `--validate-every`."""

import csv

import keras
import numpy as np
import pytest

from keras_da.evaluation import evaluate_methods
from keras_da.presets import get_preset
from keras_da.training.run import recorded_train_seconds, train_from_preset
from keras_da.training.validation import ValidationRMSE


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


def test_last_score_matches_an_independent_evaluation(curve_run):
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
