import numpy as np
import pytest
from diagnostic_layers import LinearCovarianceAnalysis

from keras_da import FreeRun, LinearObservation, ResidualCNNAnalysis, ThreeDVar
from keras_da.diagnostics import (
    covariance_from_gain,
    implied_covariance_jacobian,
    implied_gain_jacobian,
    implied_gain_least_squares,
    relative_difference,
)

STATE_DIM = 8


def random_covariance(size, seed):
    factor = np.random.default_rng(seed).standard_normal((size, size))
    return factor @ factor.T / size + 0.1 * np.eye(size)


def random_states(count, seed=0):
    return np.random.default_rng(seed).standard_normal((count, STATE_DIM))


@pytest.mark.parametrize(
    "operator",
    [LinearObservation(0.5), LinearObservation([0.5, 1.0, 2.0, 4.0], stride=2)],
    ids=["identity", "every_second"],
)
def test_least_squares_recovers_linear_gain(operator):
    covariance = random_covariance(STATE_DIM, seed=1)
    analysis = LinearCovarianceAnalysis(covariance, observation_operator=operator, dtype="float64")
    H = operator.matrix(STATE_DIM)
    expected_gain = covariance @ H.T @ np.linalg.inv(operator.covariance(STATE_DIM))

    gain = implied_gain_least_squares(analysis, random_states(3), num_samples=30, seed=4)

    assert gain.shape == (3, STATE_DIM, H.shape[0])
    np.testing.assert_allclose(gain, np.broadcast_to(expected_gain, gain.shape), atol=1e-10)


@pytest.mark.parametrize(
    "operator",
    [LinearObservation(0.5), LinearObservation([0.5, 1.0, 2.0, 4.0], stride=2)],
    ids=["identity", "every_second"],
)
def test_jacobian_recovers_linear_gain_and_covariance(operator):
    covariance = random_covariance(STATE_DIM, seed=2)
    analysis = LinearCovarianceAnalysis(covariance, observation_operator=operator, dtype="float64")
    H = operator.matrix(STATE_DIM)
    expected_gain = covariance @ H.T @ np.linalg.inv(operator.covariance(STATE_DIM))

    gain = implied_gain_jacobian(analysis, random_states(3))
    implied = implied_covariance_jacobian(analysis, random_states(3))

    np.testing.assert_allclose(gain, np.broadcast_to(expected_gain, gain.shape), atol=1e-12)
    np.testing.assert_allclose(implied, np.broadcast_to(covariance, implied.shape), atol=1e-12)


def test_gain_ignores_zero_innovation_bias():
    covariance = random_covariance(STATE_DIM, seed=3)
    bias = np.linspace(-1.0, 1.0, STATE_DIM)
    analysis = LinearCovarianceAnalysis(covariance, bias=bias, dtype="float64")

    gain = implied_gain_least_squares(analysis, random_states(2), num_samples=20, seed=0)

    np.testing.assert_allclose(gain, np.broadcast_to(covariance, gain.shape), atol=1e-10)


def test_covariance_from_gain_identity_observation():
    operator = LinearObservation(0.5)
    covariance = random_covariance(STATE_DIM, seed=5)
    gain = covariance / 0.5  # K = Pᵃ R⁻¹ with H = I

    np.testing.assert_allclose(covariance_from_gain(gain, operator, STATE_DIM), covariance, atol=1e-12)


def test_covariance_from_gain_keeps_observed_columns():
    operator = LinearObservation([0.5, 1.0, 2.0, 4.0], stride=2)
    covariance = random_covariance(STATE_DIM, seed=6)
    H = operator.matrix(STATE_DIM)
    gain = covariance @ H.T @ np.linalg.inv(operator.covariance(STATE_DIM))

    recovered = covariance_from_gain(gain, operator, STATE_DIM)

    np.testing.assert_allclose(recovered[:, 0::2], covariance[:, 0::2], atol=1e-12)
    np.testing.assert_array_equal(recovered[:, 1::2], 0.0)


def test_three_dvar_gain_by_both_estimates():
    # 3D-Var has no `increment` method, so both estimates go through its call.
    operator = LinearObservation(2.0, stride=2)
    analysis = ThreeDVar(operator, background_std=0.7, dtype="float64")
    expected = analysis.gain(STATE_DIM)
    forecast = random_states(6).reshape(2, 3, STATE_DIM)  # ensembles: the mean increment

    least_squares = implied_gain_least_squares(analysis, forecast, num_samples=12, seed=1)
    jacobian = implied_gain_jacobian(analysis, forecast)

    np.testing.assert_allclose(least_squares, np.broadcast_to(expected, least_squares.shape), atol=1e-10)
    np.testing.assert_allclose(jacobian, np.broadcast_to(expected, jacobian.shape), atol=1e-12)


def test_estimates_agree_on_nonlinear_network():
    analysis = ResidualCNNAnalysis(filters=4, num_blocks=1, convs_per_block=2, dtype="float64")
    analysis.build((None, 1, STATE_DIM))
    rng = np.random.default_rng(0)
    for weight in analysis.weights:
        weight.assign(0.4 * rng.standard_normal(weight.shape))
    states = 8.0 + 3.0 * random_states(3)

    jacobian = implied_gain_jacobian(analysis, states)
    small = implied_gain_least_squares(analysis, states, 80, seed=2, innovation_scale=1e-4)
    large = implied_gain_least_squares(analysis, states, 80, seed=2, innovation_scale=1.0)

    assert np.all(relative_difference(small, jacobian) < 1e-3)
    # Unit innovations reach the network's nonlinear range: the fit differs from the Jacobian.
    assert np.all(relative_difference(large, jacobian) > 10 * relative_difference(small, jacobian))


def test_least_squares_rejects_too_few_samples():
    analysis = LinearCovarianceAnalysis(np.eye(STATE_DIM))
    with pytest.raises(ValueError, match="num_samples"):
        implied_gain_least_squares(analysis, random_states(1), num_samples=STATE_DIM)


def test_covariance_jacobian_needs_increment_method():
    with pytest.raises(TypeError, match="increment"):
        implied_covariance_jacobian(ThreeDVar(), random_states(1))


def test_covariance_from_gain_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(\.\.\., Nx, Ny\)"):
        covariance_from_gain(np.zeros((STATE_DIM, 3)), LinearObservation(), STATE_DIM)


def test_gain_of_free_run_is_zero():
    gain = implied_gain_jacobian(FreeRun(), random_states(2).astype("float32"))
    np.testing.assert_array_equal(gain, np.zeros((2, STATE_DIM, STATE_DIM)))
