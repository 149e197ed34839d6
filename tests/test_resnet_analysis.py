import keras
import numpy as np
import pytest

from keras_da import LinearObservation, PeriodicConv1D, ResidualCNNAnalysis


def random_weights(layer, seed=0):
    """Give every weight a random value (the output convolution starts at zero)."""
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(0.3 * rng.standard_normal(weight.shape).astype("float32"))


def make_analysis(**kwargs):
    analysis = ResidualCNNAnalysis(filters=6, num_blocks=2, convs_per_block=2, **kwargs)
    analysis.build((None, 1, 40))
    random_weights(analysis)
    return analysis


def test_periodic_convolution_is_shift_equivariant():
    layer = PeriodicConv1D(3, 5, activation="tanh")
    x = np.random.default_rng(1).standard_normal((2, 17, 4)).astype("float32")
    out = np.asarray(layer(x))
    shifted = np.asarray(layer(np.roll(x, 5, axis=1)))
    np.testing.assert_allclose(shifted, np.roll(out, 5, axis=1), atol=1e-5)
    assert out.shape == (2, 17, 3)


def test_periodic_convolution_wraps_around_the_ends():
    # A kernel that picks the left neighbour: out[n] = x[n - 1] with x[-1] = x[Nx - 1].
    layer = PeriodicConv1D(1, 3, use_bias=False)
    layer.build((None, 5, 1))
    layer.conv.kernel.assign(np.array([1.0, 0.0, 0.0], "float32").reshape(3, 1, 1))
    x = np.arange(5.0, dtype="float32").reshape(1, 5, 1)
    np.testing.assert_array_equal(np.asarray(layer(x))[0, :, 0], [4.0, 0.0, 1.0, 2.0, 3.0])


def test_analysis_is_shift_equivariant():
    analysis = make_analysis()
    rng = np.random.default_rng(2)
    forecast = rng.standard_normal((3, 1, 40)).astype("float32")
    y = rng.standard_normal((3, 40)).astype("float32")
    out = np.asarray(analysis(forecast, y))
    shifted = np.asarray(analysis(np.roll(forecast, 7, axis=-1), np.roll(y, 7, axis=-1)))
    np.testing.assert_allclose(shifted, np.roll(out, 7, axis=-1), atol=1e-4)


@pytest.mark.parametrize("ensemble_size", [1, 4])
def test_analysis_output_shape(ensemble_size):
    analysis = make_analysis()
    forecast = np.ones((2, ensemble_size, 40), "float32")
    assert tuple(analysis(forecast, np.zeros((2, 40), "float32")).shape) == (2, ensemble_size, 40)


def test_member_permutation_permutes_the_analysis():
    analysis = make_analysis()
    rng = np.random.default_rng(3)
    forecast = rng.standard_normal((2, 5, 40)).astype("float32")
    y = rng.standard_normal((2, 40)).astype("float32")
    perm = np.array([3, 0, 4, 1, 2])
    out = np.asarray(analysis(forecast, y))
    np.testing.assert_allclose(np.asarray(analysis(forecast[:, perm], y)), out[:, perm], atol=1e-5)


def test_untrained_analysis_returns_the_forecast():
    analysis = ResidualCNNAnalysis(filters=4, num_blocks=1, convs_per_block=1)
    forecast = np.random.default_rng(4).standard_normal((2, 1, 40)).astype("float32")
    out = analysis(forecast, np.zeros((2, 40), "float32") + 3.0)
    np.testing.assert_array_equal(np.asarray(out), forecast)


def test_increment_uses_precision_weighted_innovation():
    # With H observing every other variable and R = 4 I, the analysis must equal the increment
    # computed from ζ = Hᵀ R⁻¹ (y − H x̄) by hand.
    H = LinearObservation(variance=4.0, stride=2)
    analysis = ResidualCNNAnalysis(H, filters=4, num_blocks=1, convs_per_block=1)
    analysis.build((None, 1, 40))
    random_weights(analysis, seed=5)
    rng = np.random.default_rng(5)
    forecast = rng.standard_normal((2, 1, 40)).astype("float32")
    y = rng.standard_normal((2, 20)).astype("float32")
    zeta = np.zeros((2, 40), "float32")
    zeta[:, ::2] = (y - forecast[:, 0, ::2]) / 4.0
    expected = forecast + np.asarray(analysis.increment(forecast, zeta))
    np.testing.assert_allclose(np.asarray(analysis(forecast, y)), expected, atol=1e-6)


@pytest.mark.parametrize("state_dim", [20, 160])
def test_weights_built_at_40_apply_to_another_grid_size(state_dim):
    analysis = make_analysis()  # built and given weights at Nx = 40
    rng = np.random.default_rng(6)
    forecast = rng.standard_normal((2, 1, state_dim)).astype("float32")
    y = rng.standard_normal((2, state_dim)).astype("float32")
    out = np.asarray(analysis(forecast, y))
    assert out.shape == (2, 1, state_dim)
    shifted = np.asarray(analysis(np.roll(forecast, 3, axis=-1), np.roll(y, 3, axis=-1)))
    np.testing.assert_allclose(shifted, np.roll(out, 3, axis=-1), atol=1e-4)


def test_config_and_keras_file_round_trip(tmp_path):
    analysis = make_analysis(observation_operator=LinearObservation(variance=0.5))
    clone = ResidualCNNAnalysis.from_config(analysis.get_config())
    clone.build((None, 1, 40))
    clone.set_weights(analysis.get_weights())
    rng = np.random.default_rng(7)
    forecast = rng.standard_normal((3, 1, 40)).astype("float32")
    y = rng.standard_normal((3, 40)).astype("float32")
    np.testing.assert_array_equal(np.asarray(clone(forecast, y)), np.asarray(analysis(forecast, y)))

    ef, obs = keras.Input((1, 40)), keras.Input((40,))
    model = keras.Model([ef, obs], analysis(ef, obs))
    model.save(tmp_path / "analysis.keras")
    loaded = keras.models.load_model(tmp_path / "analysis.keras")
    np.testing.assert_array_equal(np.asarray(loaded([forecast, y])), np.asarray(model([forecast, y])))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filters": 0}, "filters"),
        ({"num_blocks": -1}, "num_blocks"),
        ({"kernel_size": 4}, "odd"),
        ({"activation": "sigmoidal"}, "activation"),
    ],
)
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ResidualCNNAnalysis(**kwargs)


def test_ensemble_of_wrong_rank_raises():
    analysis = ResidualCNNAnalysis(filters=4, num_blocks=1, convs_per_block=1)
    with pytest.raises(ValueError, match=r"rank 3, shape \(batch, Ne, Nx\)"):
        analysis(np.zeros((2, 40), "float32"), np.zeros((2, 40), "float32"))


def test_observation_of_wrong_size_raises():
    analysis = ResidualCNNAnalysis(filters=4, num_blocks=1, convs_per_block=1)
    with pytest.raises(ValueError, match="39 entries"):
        analysis(np.zeros((2, 1, 40), "float32"), np.zeros((2, 39), "float32"))


def test_non_finite_observation_raises():
    analysis = ResidualCNNAnalysis(filters=4, num_blocks=1, convs_per_block=1)
    y = np.zeros((2, 40), "float32")
    y[0, 0] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        analysis(np.zeros((2, 1, 40), "float32"), y)
