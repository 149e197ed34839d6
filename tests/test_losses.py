import numpy as np

from keras_da import LinearObservation, Lorenz96
from keras_da.training.losses import observation_loss, supervised_loss


def test_supervised_loss_is_mean_squared_error():
    rng = np.random.default_rng(0)
    means, truths = rng.standard_normal((2, 3, 4, 40))
    expected = np.mean((means - truths) ** 2)
    np.testing.assert_allclose(float(supervised_loss(means, truths, None, None, None)), expected)


def test_observation_loss_never_reads_the_truth():
    rng = np.random.default_rng(1)
    means = 8.0 + rng.standard_normal((3, 5, 40))
    observations = 8.0 + rng.standard_normal((3, 5, 20))
    H = LinearObservation(variance=2.0, stride=2)
    first = observation_loss(means, rng.standard_normal((3, 5, 40)), observations, Lorenz96(), H)
    second = observation_loss(means, 1e6 * rng.standard_normal((3, 5, 40)), observations, Lorenz96(), H)
    assert float(first) == float(second)


def test_observation_loss_matches_hand_computation():
    rng = np.random.default_rng(2)
    means = 8.0 + rng.standard_normal((2, 4, 40))
    observations = 8.0 + rng.standard_normal((2, 4, 20))
    H = LinearObservation(variance=2.0, stride=2)
    forecasts = np.asarray(Lorenz96(dtype="float64")(means[:, :-1]))
    expected = np.mean((observations[:, 1:] - forecasts[..., ::2]) ** 2 / 2.0)
    value = observation_loss(means, None, observations, Lorenz96(), H)
    np.testing.assert_allclose(float(value), expected, rtol=1e-10)


def test_observation_loss_leaves_out_missing_observations():
    rng = np.random.default_rng(3)
    means = 8.0 + rng.standard_normal((1, 3, 40))
    observations = 8.0 + rng.standard_normal((1, 3, 40))
    H = LinearObservation(variance=1.0, allow_missing=True)
    complete = float(observation_loss(means, None, observations, Lorenz96(), H))
    observations[0, 2, :20] = np.nan
    forecasts = np.asarray(Lorenz96()(means[:, :-1]))
    squared = (observations[:, 1:] - forecasts) ** 2
    expected = np.nanmean(squared)
    value = float(observation_loss(means, None, observations, Lorenz96(), H))
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    assert value != complete
