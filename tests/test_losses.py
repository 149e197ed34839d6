import numpy as np

from keras_da import LinearObservation, Lorenz96
from keras_da.training.losses import observation_loss, supervised_loss


def test_supervised_loss_is_mean_squared_error():
    rng = np.random.default_rng(0)
    means, truths = rng.standard_normal((2, 3, 4, 40))
    expected = np.mean((means - truths) ** 2, axis=(1, 2))
    np.testing.assert_allclose(np.asarray(supervised_loss(means, truths, None, None, None)), expected)


def test_observation_loss_never_reads_the_truth():
    rng = np.random.default_rng(1)
    means = 8.0 + rng.standard_normal((3, 5, 40))
    observations = 8.0 + rng.standard_normal((3, 5, 20))
    H = LinearObservation(variance=2.0, stride=2)
    first = observation_loss(means, rng.standard_normal((3, 5, 40)), observations, Lorenz96(), H)
    second = observation_loss(means, 1e6 * rng.standard_normal((3, 5, 40)), observations, Lorenz96(), H)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))


def test_observation_loss_matches_hand_computation():
    rng = np.random.default_rng(2)
    means = 8.0 + rng.standard_normal((2, 4, 40))
    observations = 8.0 + rng.standard_normal((2, 4, 20))
    H = LinearObservation(variance=2.0, stride=2)
    forecasts = np.asarray(Lorenz96(dtype="float64")(means[:, :-1]))
    expected = np.mean((observations[:, 1:] - forecasts[..., ::2]) ** 2 / 2.0, axis=(1, 2))
    value = observation_loss(means, None, observations, Lorenz96(), H)
    np.testing.assert_allclose(np.asarray(value), expected, rtol=1e-10)


def test_observation_loss_leaves_out_missing_observations():
    rng = np.random.default_rng(3)
    means = 8.0 + rng.standard_normal((1, 3, 40))
    observations = 8.0 + rng.standard_normal((1, 3, 40))
    H = LinearObservation(variance=1.0, allow_missing=True)
    complete = float(observation_loss(means, None, observations, Lorenz96(), H)[0])
    observations[0, 2, :20] = np.nan
    forecasts = np.asarray(Lorenz96()(means[:, :-1]))
    squared = (observations[:, 1:] - forecasts) ** 2
    expected = np.nanmean(squared)
    value = float(observation_loss(means, None, observations, Lorenz96(), H)[0])
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    assert value != complete


def test_observation_trained_filter_gradients_ignore_truth():
    import keras
    import tensorflow as tf

    from keras_da import LearnedFilter, ResidualCNNAnalysis

    analysis = ResidualCNNAnalysis(LinearObservation(1.0), filters=4, num_blocks=1, convs_per_block=1)
    model = LearnedFilter(Lorenz96(), analysis, 40, pool_size=8, batch_size=8, window_length=4,
                          spin_up_cycles=50, loss="observation")
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=False)
    model.initialize_pool()
    rng = np.random.default_rng(4)
    for weight in analysis.trainable_weights:
        weight.assign(0.1 * rng.standard_normal(weight.shape))
    truths, observations = model.generate_window(tf.constant(np.asarray(model.pool_truth)))
    state = tf.constant(np.asarray(model.pool_ensemble))
    first = model.window_gradients(observations, state, truths)[0]
    noise = tf.constant(rng.standard_normal(truths.shape).astype("float32"))
    second = model.window_gradients(observations, state, noise)[0]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert any(np.any(np.asarray(g) != 0) for g in first)
