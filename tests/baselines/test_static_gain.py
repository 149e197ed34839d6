import keras
import numpy as np
import pytest
from linear_gaussian_reference import kalman_update, random_covariance

from keras_da import LinearObservation, Lorenz96
from keras_da.baselines import OptimalInterpolation, ThreeDVar, climatological_covariance

STATE_DIM = 6


def problem(seed, operator):
    rng = np.random.default_rng(seed)
    covariance = random_covariance(STATE_DIM, rng, condition=5.0)
    forecast = rng.standard_normal((2, 3, STATE_DIM))
    observations = rng.standard_normal((2, operator.observation_dim(STATE_DIM)))
    return covariance, forecast, observations


def test_three_dvar_with_true_covariance_is_kalman_update():
    operator = LinearObservation(variance=[0.5, 1.0, 3.0], indices=[5, 0, 2])
    covariance, forecast, observations = problem(1, operator)
    analysis = np.asarray(
        ThreeDVar(operator, background_covariance=covariance, dtype="float64")(
            forecast, observations
        )
    )
    assert analysis.dtype == np.float64
    H = operator.matrix(STATE_DIM)
    R = operator.covariance(STATE_DIM)
    for k in range(2):
        mean = forecast[k].mean(axis=0)
        expected_mean, _ = kalman_update(mean, covariance, observations[k], H, R)
        np.testing.assert_allclose(analysis[k].mean(axis=0), expected_mean, rtol=0, atol=1e-13)
        # Every member receives the same increment, so the spread is unchanged.
        np.testing.assert_allclose(
            analysis[k] - analysis[k].mean(axis=0), forecast[k] - mean, atol=1e-13
        )


def test_three_dvar_diagonal_b_matches_dense_b():
    operator = LinearObservation(variance=0.8, stride=2)
    _, forecast, observations = problem(2, operator)
    diagonal = ThreeDVar(operator, background_std=0.6, dtype="float64")
    dense = ThreeDVar(
        operator, background_covariance=np.eye(STATE_DIM), covariance_scale=0.36, dtype="float64"
    )
    np.testing.assert_allclose(
        np.asarray(diagonal(forecast, observations)),
        np.asarray(dense(forecast, observations)),
        atol=1e-13,
    )


def test_optimal_interpolation_matches_three_dvar_with_scaled_b():
    operator = LinearObservation(variance=1.5)
    covariance, forecast, observations = problem(3, operator)
    oi = OptimalInterpolation(covariance, operator, covariance_scale=0.1, dtype="float64")
    three_dvar = ThreeDVar(
        operator, background_covariance=0.1 * covariance, dtype="float64"
    )
    np.testing.assert_allclose(
        np.asarray(oi(forecast, observations)),
        np.asarray(three_dvar(forecast, observations)),
        atol=1e-13,
    )


@pytest.mark.parametrize("layer_class", [ThreeDVar, OptimalInterpolation])
def test_singular_background_covariance_is_rejected(layer_class):
    vector = np.arange(1.0, STATE_DIM + 1.0)
    singular = np.outer(vector, vector)
    with pytest.raises(ValueError, match="singular or not positive definite"):
        layer_class(background_covariance=singular)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.ones((3, 4)), "square matrix"),
        (np.array([[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "NaN"),
    ],
)
def test_invalid_background_covariance_is_rejected(matrix, message):
    with pytest.raises(ValueError, match=message):
        OptimalInterpolation(matrix)


@pytest.mark.parametrize("scale", [0.0, -0.5, float("nan"), "0.1"])
def test_invalid_covariance_scale_is_rejected(scale):
    with pytest.raises(ValueError, match="covariance_scale"):
        ThreeDVar(covariance_scale=scale)


def test_optimal_interpolation_rejects_other_grid():
    oi = OptimalInterpolation(np.eye(4))
    with pytest.raises(ValueError, match="Nx=5"):
        oi(np.zeros((1, 1, 5), "float32"), np.zeros((1, 5), "float32"))


def test_climatological_covariance_of_lorenz96():
    covariance = climatological_covariance(
        Lorenz96(), state_dim=40, num_samples=400, spin_up=200, seed=1
    )
    assert covariance.shape == (40, 40)
    np.testing.assert_allclose(covariance, covariance.T)
    assert np.linalg.eigvalsh(covariance).min() > 0
    # Lorenz 96 (F = 8) has a climatological variance close to 13 for every variable; 400
    # samples estimate it to about 7 %.
    assert 10.0 < np.mean(np.diag(covariance)) < 16.0
    again = climatological_covariance(Lorenz96(), state_dim=40, num_samples=400, spin_up=200, seed=1)
    np.testing.assert_array_equal(covariance, again)
    three_dvar = ThreeDVar(background_covariance=covariance, covariance_scale=0.02)
    assert three_dvar.gain(40).shape == (40, 40)


@pytest.mark.parametrize("layer_class", [ThreeDVar, OptimalInterpolation])
def test_static_gain_config_round_trip(layer_class):
    operator = LinearObservation(variance=[1.0, 2.0, 0.5], stride=2)
    covariance, forecast, observations = problem(4, operator)
    original = layer_class(
        background_covariance=covariance,
        observation_operator=operator,
        covariance_scale=0.3,
        dtype="float64",
    )
    restored = layer_class.from_config(original.get_config())
    deserialized = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(original)
    )
    expected = np.asarray(original(forecast, observations))
    for layer in (restored, deserialized):
        assert layer.covariance_scale == 0.3
        np.testing.assert_array_equal(layer.background_covariance, covariance)
        np.testing.assert_array_equal(np.asarray(layer(forecast, observations)), expected)
