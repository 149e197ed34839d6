"""The train step and the cycle compiled with XLA against graph mode."""

import numpy as np
import pytest
import tensorflow as tf
from tiny_models import tiny_filter

from keras_da import LinearObservation, Lorenz96
from keras_da.training.trainer import portable_standard_normal
from keras_da.twin import simulate

# XLA fuses and reorders float32 arithmetic. After 3 Adam steps the network weights agree to
# about 3e-8 and the pool to about 2e-6. Filtering with the barely trained network, the analysis
# means agree to 1e-6 after one cycle, and the chaotic dynamics grow the difference to about
# 1e-5 after 10 cycles. The tolerances leave a margin of 10 to 30.
WEIGHT_TOLERANCE = 1e-6
POOL_TOLERANCE = 5e-5
FILTER_TOLERANCE = 1e-4
FILTER_CYCLES = 10


@pytest.fixture(scope="module")
def xla_filter():
    model = tiny_filter(jit_compile=True)
    model.fit(steps_per_epoch=3, epochs=1, verbose=0)
    return model


def test_xla_train_step_matches_graph(xla_filter, graph_filter):
    assert xla_filter.jit_compile is True
    assert graph_filter.jit_compile is False
    pairs = zip(xla_filter.weights[:3], graph_filter.weights[:3])
    for xla_weight, graph_weight in pairs:
        np.testing.assert_allclose(xla_weight, graph_weight, atol=POOL_TOLERANCE, rtol=0)
    pairs = zip(xla_filter.trainable_weights, graph_filter.trainable_weights)
    for xla_weight, graph_weight in pairs:
        np.testing.assert_allclose(xla_weight, graph_weight, atol=WEIGHT_TOLERANCE, rtol=0)


def test_xla_cycle_matches_graph(graph_filter):
    truth0 = (8.0 + np.random.default_rng(1).standard_normal((4, 40))).astype("float32")
    _, observations = simulate(Lorenz96(), LinearObservation(1.0), truth0, FILTER_CYCLES, seed=2)
    inputs = (tf.constant(observations), tf.constant(truth0[:, None, :] + 0.5))

    def filter_means(data):
        return graph_filter(data)

    graph = tf.function(filter_means)(inputs)
    xla = tf.function(filter_means, jit_compile=True)(inputs)
    assert np.all(np.isfinite(graph))
    np.testing.assert_allclose(np.asarray(xla), np.asarray(graph), atol=FILTER_TOLERANCE, rtol=0)


def test_portable_noise_is_the_same_under_xla():
    seed = tf.constant([3, 5], tf.int64)
    graph = tf.function(lambda: portable_standard_normal((500, 8), seed))()
    xla = tf.function(lambda: portable_standard_normal((500, 8), seed), jit_compile=True)()
    # Only the rounding of log and cos differs between the two compilers.
    np.testing.assert_allclose(np.asarray(xla), np.asarray(graph), atol=1e-5, rtol=0)


def test_portable_noise_is_standard_normal():
    samples = np.asarray(portable_standard_normal((200_000,), tf.constant([1, 2], tf.int64)))
    # Standard errors: 0.0022 for the mean, 0.0032 for the variance; the bounds are 5 of them.
    assert abs(samples.mean()) < 0.011
    assert abs(samples.var() - 1.0) < 0.016
    assert np.abs(samples).max() < 6.0
