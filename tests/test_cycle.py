import keras
import numpy as np
import pytest

from keras_da import (
    AssimilationCell,
    FreeRun,
    LinearObservation,
    Lorenz96,
    ResidualCNNAnalysis,
    ThreeDVar,
)
from keras_da.twin import simulate


def observations_of(states, num_cycles=12, seed=0):
    truth, y = simulate(Lorenz96(), LinearObservation(1.0), states, num_cycles, seed=seed)
    return np.asarray(truth), np.asarray(y)


def trained_like_analysis():
    analysis = ResidualCNNAnalysis(filters=6, num_blocks=1, convs_per_block=2)
    analysis.build((None, 1, 40))
    rng = np.random.default_rng(0)
    for weight in analysis.weights:
        weight.assign(0.05 * rng.standard_normal(weight.shape).astype("float32"))
    return analysis


@pytest.mark.parametrize("ensemble_size", [1, 3])
def test_rnn_shapes(attractor_states, ensemble_size):
    cell = AssimilationCell(Lorenz96(), trained_like_analysis(), 40, ensemble_size)
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    _, y = observations_of(attractor_states[:4])
    E0 = np.repeat(attractor_states[:4, None, :], ensemble_size, axis=1).reshape(4, -1)
    means, final = rnn(y, initial_state=[E0])
    assert tuple(means.shape) == (4, 12, 40)
    assert tuple(final.shape) == (4, ensemble_size * 40)


def test_ensemble_output_option(attractor_states):
    cell = AssimilationCell(Lorenz96(), FreeRun(), 40, 2, output="ensemble")
    rnn = keras.layers.RNN(cell, return_sequences=True)
    _, y = observations_of(attractor_states[:2], num_cycles=3)
    E0 = np.repeat(attractor_states[:2, None, :], 2, axis=1).reshape(2, -1)
    assert tuple(rnn(y, initial_state=[E0]).shape) == (2, 3, 80)


def test_stateful_continuation_equals_one_long_run(attractor_states):
    analysis = trained_like_analysis()
    batch = 4
    _, y = observations_of(attractor_states[:batch], num_cycles=12)
    E0 = attractor_states[:batch] + 0.5

    whole = keras.layers.RNN(AssimilationCell(Lorenz96(), analysis, 40), return_sequences=True)
    expected = np.asarray(whole(y, initial_state=[E0]))

    stateful = keras.layers.RNN(
        AssimilationCell(Lorenz96(), analysis, 40), return_sequences=True, stateful=True
    )
    stateful.build((batch, None, 40))
    first = np.asarray(stateful(y[:, :5], initial_state=[E0]))
    second = np.asarray(stateful(y[:, 5:]))
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), expected, atol=1e-5)


def test_zero_increment_reproduces_the_free_run(attractor_states):
    # An untrained a_θ (zero output convolution) and the FreeRun analysis both give E^a = E^f.
    model = Lorenz96()
    x0 = attractor_states[:3] + 0.1
    _, y = observations_of(attractor_states[:3], num_cycles=10)
    free = [x0]
    for _ in range(10):
        free.append(np.asarray(model(free[-1])))
    free = np.stack(free[1:], axis=1)
    for analysis in (FreeRun(), ResidualCNNAnalysis(filters=4, num_blocks=1, convs_per_block=1)):
        rnn = keras.layers.RNN(AssimilationCell(model, analysis, 40), return_sequences=True)
        np.testing.assert_array_equal(np.asarray(rnn(y, initial_state=[x0])), free)


def test_three_dvar_matches_closed_form():
    H = LinearObservation(variance=[0.5, 1.0, 2.0], indices=[0, 2, 3])
    analysis = ThreeDVar(H, background_std=0.7, dtype="float64")
    rng = np.random.default_rng(1)
    forecast = rng.standard_normal((2, 1, 5))
    y = rng.standard_normal((2, 3))
    Hm, R, B = H.matrix(5), H.covariance(5), 0.49 * np.eye(5)
    K = B @ Hm.T @ np.linalg.inv(Hm @ B @ Hm.T + R)
    expected = forecast[:, 0] + (y - forecast[:, 0] @ Hm.T) @ K.T
    np.testing.assert_allclose(np.asarray(analysis(forecast, y))[:, 0], expected, rtol=1e-12)

    dense = ThreeDVar(H, background_covariance=B, dtype="float64")
    np.testing.assert_allclose(np.asarray(dense(forecast, y))[:, 0], expected, rtol=1e-12)


def test_three_dvar_rejects_singular_background():
    B = np.diag([1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="singular"):
        ThreeDVar(background_covariance=B)


def test_cell_config_round_trip(attractor_states):
    cell = AssimilationCell(Lorenz96(forcing=8.0), trained_like_analysis(), 40, 1)
    clone = AssimilationCell.from_config(cell.get_config())
    clone.build((None, 40))
    clone.analysis.set_weights(cell.analysis.get_weights())
    _, y = observations_of(attractor_states[:2], num_cycles=1)
    state = [attractor_states[:2]]
    np.testing.assert_array_equal(
        np.asarray(clone(y[:, 0], state)[0]), np.asarray(cell(y[:, 0], state)[0])
    )


def test_cell_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Nx=3"):
        AssimilationCell(Lorenz96(), FreeRun(), 3)
    with pytest.raises(ValueError, match="ensemble_size"):
        AssimilationCell(Lorenz96(), FreeRun(), 40, 0)
    with pytest.raises(TypeError, match="AnalysisLayer"):
        AssimilationCell(Lorenz96(), keras.layers.Dense(3), 40)
