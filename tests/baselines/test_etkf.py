import keras
import numpy as np
import pytest
import tensorflow as tf
from linear_gaussian_reference import (
    ensemble_with_moments,
    kalman_update,
    random_covariance,
    sample_moments,
)

from keras_da import LinearObservation
from keras_da.baselines import ETKF
from keras_da.baselines.ensemble_space import (
    inflate_anomalies,
    random_mean_preserving_rotation,
)

STATE_DIM = 5
ENSEMBLE_SIZE = 9
BATCH = 3


def linear_gaussian_problem(seed, observation_operator):
    """Return forecast ensembles, observations and the prior moments of `BATCH` problems."""
    rng = np.random.default_rng(seed)
    H = observation_operator.matrix(STATE_DIM)
    means, covariances, ensembles, observations = [], [], [], []
    for _ in range(BATCH):
        mean = rng.standard_normal(STATE_DIM)
        covariance = random_covariance(STATE_DIM, rng)
        ensembles.append(ensemble_with_moments(mean, covariance, ENSEMBLE_SIZE, rng))
        observations.append(H @ mean + 2.0 * rng.standard_normal(H.shape[0]))
        means.append(mean)
        covariances.append(covariance)
    return np.stack(ensembles), np.stack(observations), means, covariances


@pytest.mark.parametrize("inflation", [1.0, 1.1])
def test_etkf_matches_kalman_update(inflation):
    operator = LinearObservation(variance=[0.5, 2.0, 1.5], indices=[0, 2, 3])
    forecast, observations, means, covariances = linear_gaussian_problem(1, operator)
    etkf = ETKF(operator, inflation=inflation, dtype="float64")
    analysis = np.asarray(etkf(forecast, observations))
    assert analysis.dtype == np.float64
    analysis_mean, analysis_covariance = sample_moments(analysis)
    H = operator.matrix(STATE_DIM)
    R = operator.covariance(STATE_DIM)
    for k in range(BATCH):
        expected_mean, expected_covariance = kalman_update(
            means[k], inflation**2 * covariances[k], observations[k], H, R
        )
        np.testing.assert_allclose(analysis_mean[k], expected_mean, rtol=0, atol=1e-12)
        np.testing.assert_allclose(analysis_covariance[k], expected_covariance, rtol=0, atol=1e-12)


def test_etkf_float32_close_to_float64():
    operator = LinearObservation(variance=1.0)
    forecast, observations, _, _ = linear_gaussian_problem(2, operator)
    reference = np.asarray(ETKF(operator, dtype="float64")(forecast, observations))
    single = ETKF(operator)(forecast.astype("float32"), observations.astype("float32"))
    assert single.dtype == tf.float32
    np.testing.assert_allclose(np.asarray(single), reference, rtol=0, atol=1e-4)


def test_inflation_preserves_mean_and_scales_anomalies():
    ensemble = np.random.default_rng(3).standard_normal((2, 6, 4))
    inflated = np.asarray(inflate_anomalies(tf.constant(ensemble), 1.3))
    np.testing.assert_allclose(inflated.mean(axis=1), ensemble.mean(axis=1), atol=1e-14)
    anomalies = ensemble - ensemble.mean(axis=1, keepdims=True)
    inflated_anomalies = inflated - inflated.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(inflated_anomalies, 1.3 * anomalies, atol=1e-14)


def test_rotation_matrix_is_orthogonal_and_keeps_ones():
    rotation = np.asarray(random_mean_preserving_rotation(4, 7, seed=5, dtype="float64"))
    identity = np.broadcast_to(np.eye(7), rotation.shape)
    np.testing.assert_allclose(rotation @ np.swapaxes(rotation, 1, 2), identity, atol=1e-13)
    np.testing.assert_allclose(rotation @ np.ones(7), np.ones((4, 7)), atol=1e-13)
    np.testing.assert_allclose(np.ones(7) @ rotation, np.ones((4, 7)), atol=1e-13)
    # Independent draws per batch element: the matrices differ.
    assert np.abs(rotation[0] - rotation[1]).max() > 0.1


def test_rotation_preserves_mean_and_covariance():
    operator = LinearObservation(variance=1.0)
    forecast, observations, _, _ = linear_gaussian_problem(4, operator)
    plain = np.asarray(ETKF(operator, dtype="float64")(forecast, observations))
    rotated = np.asarray(
        ETKF(operator, random_rotation=True, seed=7, dtype="float64")(forecast, observations)
    )
    plain_mean, plain_covariance = sample_moments(plain)
    rotated_mean, rotated_covariance = sample_moments(rotated)
    np.testing.assert_allclose(rotated_mean, plain_mean, atol=1e-12)
    np.testing.assert_allclose(rotated_covariance, plain_covariance, atol=1e-12)
    assert np.abs(rotated - plain).max() > 0.1


def test_rotation_is_reproducible_with_seed():
    operator = LinearObservation(variance=1.0)
    forecast, observations, _, _ = linear_gaussian_problem(5, operator)
    first = ETKF(operator, random_rotation=True, seed=11, dtype="float64")
    second = ETKF(operator, random_rotation=True, seed=11, dtype="float64")
    first_output = np.asarray(first(forecast, observations))
    np.testing.assert_array_equal(first_output, np.asarray(second(forecast, observations)))
    # The seed generator advances, so the next call draws a new rotation.
    assert np.abs(np.asarray(first(forecast, observations)) - first_output).max() > 0.1


@pytest.mark.parametrize("inflation", [0.99, 0.0, -1.0, float("nan"), float("inf"), True, "1.02"])
def test_etkf_rejects_invalid_inflation(inflation):
    with pytest.raises(ValueError, match="inflation"):
        ETKF(inflation=inflation)


def test_etkf_rejects_single_member():
    with pytest.raises(ValueError, match="at least 2 ensemble members"):
        ETKF()(np.zeros((2, 1, 4), "float32"), np.zeros((2, 4), "float32"))


def test_etkf_config_round_trip():
    operator = LinearObservation(variance=0.5, stride=2)
    original = ETKF(operator, inflation=1.03, random_rotation=True, seed=4, dtype="float64")
    forecast, observations, _, _ = linear_gaussian_problem(6, operator)
    restored = ETKF.from_config(original.get_config())
    deserialized = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(original)
    )
    expected = np.asarray(original(forecast, observations))
    for layer in (restored, deserialized):
        assert layer.inflation == 1.03
        assert layer.observation_operator.stride == 2
        np.testing.assert_array_equal(np.asarray(layer(forecast, observations)), expected)
