import inspect

import numpy as np
import pytest

from keras_da import LinearObservation, Lorenz96
from keras_da.baselines import (
    BASELINES,
    DEFAULT_ENSEMBLE_SIZES,
    SWEEP_PARAMETERS,
    build_baseline,
)
from keras_da.evaluation import make_twin_experiment, rmse_series, run_filter


def settings_for(name, state_dim=8):
    return {"background_covariance": np.eye(state_dim)} if name == "oi" else {}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_builds_and_runs(name):
    operator = LinearObservation(variance=1.0, stride=2)
    layer = build_baseline(name, operator, dtype="float64", **settings_for(name))
    assert isinstance(layer, BASELINES[name])
    assert layer.observation_operator is operator
    forecast = np.random.default_rng(0).standard_normal((2, 5, 8))
    analysis = np.asarray(layer(forecast, np.zeros((2, 4))))
    assert analysis.shape == (2, 5, 8)
    assert analysis.dtype == np.float64


def test_unknown_baseline_is_rejected():
    with pytest.raises(ValueError, match="Unknown baseline 'letkf'. Available baselines: enkf"):
        build_baseline("letkf")


def test_unknown_setting_is_rejected():
    with pytest.raises(ValueError, match="does not take the setting\\(s\\) background_std"):
        build_baseline("etkf", background_std=0.5)


def test_sweep_parameters_are_constructor_arguments():
    assert set(SWEEP_PARAMETERS) <= set(BASELINES)
    assert set(DEFAULT_ENSEMBLE_SIZES) == set(BASELINES)
    for name, (parameter, grid) in SWEEP_PARAMETERS.items():
        assert parameter in inspect.signature(BASELINES[name].__init__).parameters
        assert len(grid) >= 3
        for value in grid:
            build_baseline(name, **{parameter: value}, **settings_for(name))


@pytest.mark.parametrize(
    ("name", "settings", "dtype"),
    [
        ("enkf", {"inflation": 1.1, "seed": 1}, "float32"),
        ("etkf", {"inflation": 1.02, "random_rotation": True, "seed": 1}, "float64"),
        ("enkf_n", {}, "float32"),
    ],
)
def test_ensemble_filters_run_in_the_cycle(name, settings, dtype):
    dynamics = Lorenz96()
    operator = LinearObservation(variance=1.0)
    twin = make_twin_experiment(
        dynamics, operator, state_dim=40, num_runs=2, num_cycles=60, spin_up_cycles=200, seed=3
    )
    layer = build_baseline(name, operator, dtype=dtype, **settings)
    means = run_filter(dynamics, layer, twin, ensemble_size=20, dtype=dtype)
    assert means.dtype == np.dtype(dtype)
    rmse = rmse_series(means, twin.truth)
    # From an initial error of 1 (R = I), a working filter settles well below the observation
    # error within 60 cycles.
    assert np.all(np.isfinite(rmse))
    assert rmse[:, 30:].mean() < 0.6
