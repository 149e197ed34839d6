import keras
import numpy as np
import pytest

from keras_da import LinearObservation
from keras_da.analysis import InnovationOnlyAnalysis, LinearCNNAnalysis


def randomized(layer, ensemble_size=1, state_dim=40, seed=0):
    layer.build((None, ensemble_size, state_dim))
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(0.3 * rng.standard_normal(weight.shape))
    return layer


def test_linear_analysis_is_exactly_linear():
    layer = randomized(LinearCNNAnalysis(filters=5, num_blocks=2, convs_per_block=2), 3)
    rng = np.random.default_rng(1)
    u_state, v_state = rng.standard_normal((2, 2, 3, 40))
    u_zeta, v_zeta = rng.standard_normal((2, 2, 40))
    alpha, beta = 1.7, -0.6
    combined = layer.increment(alpha * u_state + beta * v_state, alpha * u_zeta + beta * v_zeta)
    separate = alpha * np.asarray(layer.increment(u_state, u_zeta)) + beta * np.asarray(
        layer.increment(v_state, v_zeta)
    )
    np.testing.assert_allclose(np.asarray(combined), separate, rtol=1e-4, atol=1e-4)
    assert not layer.input_conv.conv.use_bias


def test_linear_analysis_rejects_an_activation():
    with pytest.raises(ValueError, match="no activation"):
        LinearCNNAnalysis(activation="relu")


def test_innovation_only_analysis_ignores_the_forecast_state():
    layer = randomized(InnovationOnlyAnalysis(filters=5, num_blocks=1, convs_per_block=2), 2)
    rng = np.random.default_rng(2)
    zeta = rng.standard_normal((3, 40)).astype("float32")
    first = np.asarray(layer.increment(rng.standard_normal((3, 2, 40)).astype("float32"), zeta))
    second = np.asarray(layer.increment(rng.standard_normal((3, 2, 40)).astype("float32"), zeta))
    np.testing.assert_array_equal(first, second)
    # Every member receives the same increment.
    np.testing.assert_array_equal(first[:, 0], first[:, 1])


def test_innovation_only_analysis_depends_on_the_innovation():
    layer = randomized(InnovationOnlyAnalysis(filters=5, num_blocks=1, convs_per_block=2))
    forecast = np.zeros((1, 1, 40), "float32")
    rng = np.random.default_rng(3)
    a = np.asarray(layer(forecast, rng.standard_normal((1, 40)).astype("float32")))
    b = np.asarray(layer(forecast, rng.standard_normal((1, 40)).astype("float32")))
    assert not np.allclose(a, b)


@pytest.mark.parametrize("cls", [LinearCNNAnalysis, InnovationOnlyAnalysis])
def test_variant_config_round_trip(cls):
    layer = randomized(cls(LinearObservation(2.0), filters=4, num_blocks=1, convs_per_block=1))
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    if not clone.built:
        clone.build((None, 1, 40))
    clone.set_weights(layer.get_weights())
    rng = np.random.default_rng(4)
    forecast = rng.standard_normal((2, 1, 40)).astype("float32")
    y = rng.standard_normal((2, 40)).astype("float32")
    assert type(clone) is cls
    np.testing.assert_array_equal(np.asarray(clone(forecast, y)), np.asarray(layer(forecast, y)))
