import keras
import numpy as np
import pytest

from keras_da import LearnedFilter, LinearObservation, Lorenz96, ResidualCNNAnalysis


def tiny_filter(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    analysis = ResidualCNNAnalysis(LinearObservation(1.0), filters=8, num_blocks=1, convs_per_block=2)
    settings = dict(pool_size=64, batch_size=32, window_length=5, spin_up_cycles=200, seed=seed)
    settings.update(kwargs)
    model = LearnedFilter(Lorenz96(), analysis, 40, **settings)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)
    return model


@pytest.fixture(scope="module")
def trained():
    """A tiny filter after 300 steps, with its history (shared: tracing a train step is slow)."""
    model = tiny_filter()
    history = model.fit(steps_per_epoch=50, epochs=6, verbose=0).history
    return model, history


def test_training_lowers_loss_and_rmse_below_observation_error(trained):
    _, history = trained
    # The first windows run close to the free run; training must bring the analysis RMSE well
    # below the observation error standard deviation (1.0).
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["rmse"][-1] < 0.7
    assert history["pool_resets"][-1] == 0


def test_same_seed_gives_same_weights():
    weights = []
    for _ in range(2):
        model = tiny_filter(seed=4)
        model.fit(steps_per_epoch=5, epochs=1, verbose=0)
        weights.append([np.asarray(w) for w in model.weights])
    for first, second in zip(*weights):
        np.testing.assert_array_equal(first, second)


def test_different_seed_gives_different_initial_state():
    models = [tiny_filter(seed=s) for s in (4, 5)]
    for model in models:
        model.initialize_pool()
    kernels = [np.asarray(m.analysis.input_conv.conv.kernel) for m in models]
    assert not np.allclose(kernels[0], kernels[1])
    assert not np.allclose(np.asarray(models[0].pool_truth), np.asarray(models[1].pool_truth))


def test_pool_advances_without_gradient_through_windows(trained):
    model, _ = trained
    counter = int(model.window_counter.numpy())
    truth_before = np.asarray(model.pool_truth).copy()
    model.fit(steps_per_epoch=1, epochs=1, verbose=0)
    truth_after = np.asarray(model.pool_truth)
    # The pool holds two batches of 32; an even counter selects the first half, which alone
    # moves forward by L = 5 cycles.
    moved = slice(0, 32) if counter % 2 == 0 else slice(32, 64)
    kept = slice(32, 64) if counter % 2 == 0 else slice(0, 32)
    np.testing.assert_array_equal(truth_after[kept], truth_before[kept])
    expected = truth_before[moved]
    for _ in range(5):
        expected = np.asarray(Lorenz96()(expected))
    np.testing.assert_allclose(truth_after[moved], expected, rtol=1e-5, atol=1e-5)
    assert int(model.window_counter.numpy()) == counter + 1


def test_keras_file_round_trip(tmp_path, attractor_states, trained):
    model, _ = trained
    path = tmp_path / "filter.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    y = attractor_states[:2, None, :] + np.zeros((2, 6, 40), "float32")
    E0 = attractor_states[:2, None, :]
    np.testing.assert_array_equal(np.asarray(loaded((y, E0))), np.asarray(model((y, E0))))
    np.testing.assert_array_equal(np.asarray(loaded.pool_truth), np.asarray(model.pool_truth))


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="multiple of `batch_size`"):
        tiny_filter(pool_size=50, batch_size=32)
    with pytest.raises(ValueError, match="window_length"):
        tiny_filter(window_length=0)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        tiny_filter().fit(epochs=1)
