import keras
import numpy as np
import pytest
from linear_gaussian_reference import kalman_update, random_covariance, sample_moments

from keras_da import LinearObservation
from keras_da.baselines import EnKF, periodic_localization_matrix
from keras_da.baselines.enkf import ensemble_space_increments, observation_space_increments

STATE_DIM = 3


def sampled_problem(ensemble_size, num_trials, rng):
    """Return prior ensembles drawn from N(m, P), one observation, and the Kalman analysis."""
    operator = LinearObservation(variance=[0.5, 1.0, 2.0])
    mean = np.array([1.0, -0.5, 0.25])
    covariance = random_covariance(STATE_DIM, np.random.default_rng(0), condition=4.0)
    observation = np.array([2.0, 0.0, -1.0])
    noise = rng.standard_normal((num_trials, ensemble_size, STATE_DIM))
    ensembles = mean + noise @ np.linalg.cholesky(covariance).T
    H = operator.matrix(STATE_DIM)
    R = operator.covariance(STATE_DIM)
    expected = kalman_update(mean, covariance, observation, H, R)
    observations = np.broadcast_to(observation, (num_trials, STATE_DIM))
    return operator, ensembles, observations, expected


def test_enkf_converges_at_monte_carlo_rate():
    rng = np.random.default_rng(12)
    sizes = np.array([10, 20, 40, 80, 160])
    mean_errors, covariance_errors = [], []
    for ensemble_size in sizes:
        operator, ensembles, observations, (expected_mean, expected_covariance) = sampled_problem(
            ensemble_size, num_trials=200, rng=rng
        )
        enkf = EnKF(operator, seed=int(ensemble_size), dtype="float64")
        analysis_mean, analysis_covariance = sample_moments(enkf(ensembles, observations))
        mean_errors.append(np.sqrt(np.mean(np.sum((analysis_mean - expected_mean) ** 2, -1))))
        covariance_errors.append(
            np.sqrt(np.mean(np.sum((analysis_covariance - expected_covariance) ** 2, (-2, -1))))
        )
    mean_slope = np.polyfit(np.log(sizes), np.log(mean_errors), 1)[0]
    covariance_slope = np.polyfit(np.log(sizes), np.log(covariance_errors), 1)[0]
    assert -0.62 < mean_slope < -0.38, mean_errors
    assert -0.62 < covariance_slope < -0.38, covariance_errors
    # A direct Monte-Carlo estimate of the analysis mean has the error √(tr Pᵃ / Ne). The EnKF's
    # sampled prior and perturbations may cost up to a factor of two more.
    direct_error = np.sqrt(np.trace(expected_covariance) / sizes[-1])
    assert mean_errors[-1] < 2.0 * direct_error


def test_enkf_observation_space_branch_matches_ensemble_space():
    # Ne > Ny takes the (Ny, Ny) solve, which must agree with the (Ne, Ne) solve.
    operator = LinearObservation(variance=[0.5, 1.0, 2.0])
    ensembles = np.random.default_rng(1).standard_normal((2, 6, STATE_DIM))
    observations = np.zeros((2, STATE_DIM))
    anomalies = ensembles - ensembles.mean(axis=1, keepdims=True)
    scaled = anomalies / np.sqrt([0.5, 1.0, 2.0])
    innovations = np.random.default_rng(2).standard_normal((2, 6, STATE_DIM))
    np.testing.assert_allclose(
        np.asarray(observation_space_increments(anomalies, scaled, innovations)),
        np.asarray(ensemble_space_increments(anomalies, scaled, innovations)),
        atol=1e-12,
    )
    assert EnKF(operator, seed=0, dtype="float64")(ensembles, observations).shape == (2, 6, 3)


def sample_gain(anomalies, H, R, taper=None):
    covariance = anomalies.T @ anomalies / (len(anomalies) - 1)
    if taper is not None:
        covariance = taper * covariance
    return np.linalg.solve(H @ covariance @ H.T + R, H @ covariance).T


@pytest.mark.parametrize("radius", [None, 2.0])
def test_enkf_centered_perturbations_give_sample_gain_mean(radius):
    state_dim = 10
    operator = LinearObservation(variance=0.7, stride=2)
    rng = np.random.default_rng(5)
    ensembles = rng.standard_normal((3, 8, state_dim))
    observations = rng.standard_normal((3, 5))
    enkf = EnKF(
        operator, center_perturbations=True, localization_radius=radius, seed=2, dtype="float64"
    )
    analysis = np.asarray(enkf(ensembles, observations))
    H = operator.matrix(state_dim)
    R = operator.covariance(state_dim)
    taper = None if radius is None else periodic_localization_matrix(state_dim, radius)
    for k in range(3):
        mean = ensembles[k].mean(axis=0)
        gain = sample_gain(ensembles[k] - mean, H, R, taper)
        expected = mean + gain @ (observations[k] - H @ mean)
        np.testing.assert_allclose(analysis[k].mean(axis=0), expected, atol=1e-12)


def test_localization_taper_values():
    taper = periodic_localization_matrix(12, 2.0)
    np.testing.assert_allclose(np.diag(taper), 1.0)
    np.testing.assert_allclose(taper, taper.T)
    # On the periodic grid variables 0 and 11 are neighbours. Beyond 2 · radius the taper is 0.
    assert taper[0, 11] == pytest.approx(taper[0, 1])
    assert taper[0, 4] == 0.0
    # Gaspari–Cohn at half the support: 1/12 z⁵ − ½ z⁴ + ⅝ z³ + 5/3 z² − 5 z + 4 − 2/(3 z) at z = 1.
    assert taper[0, 2] == pytest.approx(1 / 12 - 1 / 2 + 5 / 8 + 5 / 3 - 5 + 4 - 2 / 3)
    assert np.linalg.eigvalsh(taper).min() > -1e-12


def test_enkf_is_reproducible_with_seed():
    ensembles = np.random.default_rng(6).standard_normal((2, 5, 4))
    observations = np.zeros((2, 4))
    first = np.asarray(EnKF(seed=3, dtype="float64")(ensembles, observations))
    second = np.asarray(EnKF(seed=3, dtype="float64")(ensembles, observations))
    other = np.asarray(EnKF(seed=4, dtype="float64")(ensembles, observations))
    np.testing.assert_array_equal(first, second)
    assert np.abs(first - other).max() > 1e-3


@pytest.mark.parametrize("inflation", [0.9, float("nan"), None])
def test_enkf_rejects_invalid_inflation(inflation):
    with pytest.raises(ValueError, match="inflation"):
        EnKF(inflation=inflation)


@pytest.mark.parametrize("radius", [0.0, -2.0, float("inf"), "5"])
def test_enkf_rejects_invalid_localization_radius(radius):
    with pytest.raises(ValueError, match="localization_radius"):
        EnKF(localization_radius=radius)


def test_enkf_rejects_single_member():
    with pytest.raises(ValueError, match="at least 2 ensemble members"):
        EnKF()(np.zeros((2, 1, 4), "float32"), np.zeros((2, 4), "float32"))


def test_enkf_config_round_trip():
    operator = LinearObservation(variance=[1.0, 2.0], indices=[3, 1])
    original = EnKF(
        operator,
        inflation=1.05,
        center_perturbations=True,
        localization_radius=1.5,
        seed=9,
        dtype="float64",
    )
    ensembles = np.random.default_rng(7).standard_normal((2, 6, 5))
    observations = np.ones((2, 2))
    restored = EnKF.from_config(original.get_config())
    deserialized = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(original)
    )
    expected = np.asarray(original(ensembles, observations))
    for layer in (restored, deserialized):
        assert (layer.inflation, layer.localization_radius, layer.seed) == (1.05, 1.5, 9)
        assert layer.center_perturbations
        np.testing.assert_array_equal(np.asarray(layer(ensembles, observations)), expected)
