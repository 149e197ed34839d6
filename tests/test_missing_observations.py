import keras
import numpy as np
import pytest

from keras_da import AssimilationCell, LinearObservation, Lorenz96, ResidualCNNAnalysis


def random_analysis(operator):
    analysis = ResidualCNNAnalysis(operator, filters=6, num_blocks=1, convs_per_block=2)
    analysis.build((None, 1, 40))
    rng = np.random.default_rng(0)
    for weight in analysis.weights:
        weight.assign(0.2 * rng.standard_normal(weight.shape))
    return analysis


def test_all_missing_cycle_equals_free_run(attractor_states):
    operator = LinearObservation(1.0, allow_missing=True)
    cell = AssimilationCell(Lorenz96(), random_analysis(operator), 40)
    rnn = keras.layers.RNN(cell, return_sequences=True)
    y = np.full((3, 6, 40), np.nan, "float32")
    x0 = attractor_states[:3]
    expected = [x0]
    for _ in range(6):
        expected.append(np.asarray(Lorenz96()(expected[-1])))
    np.testing.assert_array_equal(np.asarray(rnn(y, initial_state=[x0])), np.stack(expected[1:], 1))


def test_one_hidden_variable_keeps_other_increments_finite(attractor_states):
    operator = LinearObservation(1.0, allow_missing=True)
    analysis = random_analysis(operator)
    forecast = attractor_states[:2, None, :]
    y = attractor_states[:2] + 0.5
    y[:, 7] = np.nan
    out = np.asarray(analysis(forecast, y))
    assert np.all(np.isfinite(out))
    zeta = np.asarray(operator.precision_weighted_innovation(y, attractor_states[:2]))
    np.testing.assert_array_equal(zeta[:, 7], 0.0)
    np.testing.assert_allclose(zeta[:, 6], 0.5, atol=1e-5)


def test_missing_values_rejected_unless_allowed():
    y = np.zeros((1, 40), "float32")
    y[0, 3] = np.nan
    with pytest.raises(ValueError, match="allow_missing=True"):
        LinearObservation(1.0).check_observation(y, 40)
    LinearObservation(1.0, allow_missing=True).check_observation(y, 40)
    y[0, 3] = np.inf
    with pytest.raises(ValueError, match="1 infinite"):
        LinearObservation(1.0, allow_missing=True).check_observation(y, 40)


def test_random_subset_is_fixed_by_seed():
    first = LinearObservation.random_subset(10, 40, seed=3)
    second = LinearObservation.random_subset(10, 40, seed=3)
    assert first.indices == second.indices
    assert len(set(first.indices)) == 10
    assert first.indices != LinearObservation.random_subset(10, 40, seed=4).indices
    with pytest.raises(ValueError, match="num_observed"):
        LinearObservation.random_subset(41, 40, seed=0)


def test_subsampled_operator_runs_in_the_cycle(attractor_states):
    for operator in (LinearObservation(1.0, stride=4), LinearObservation.random_subset(13, 40, 1)):
        cell = AssimilationCell(Lorenz96(), random_analysis(operator), 40)
        rnn = keras.layers.RNN(cell, return_sequences=True)
        y = np.asarray(operator(attractor_states[:2]))[:, None, :].repeat(3, axis=1)
        out = np.asarray(rnn(y, initial_state=[attractor_states[:2]]))
        assert out.shape == (2, 3, 40)
        assert np.all(np.isfinite(out))


def test_three_dvar_with_missing_value_equals_smaller_operator():
    from keras_da import ThreeDVar

    rng = np.random.default_rng(5)
    forecast = rng.standard_normal((2, 1, 6))
    y = rng.standard_normal((2, 6))
    y_missing = y.copy()
    y_missing[:, 2] = np.nan
    masked = ThreeDVar(LinearObservation(0.5, allow_missing=True), background_std=0.7, dtype="float64")
    kept = [0, 1, 3, 4, 5]
    reduced = ThreeDVar(LinearObservation(0.5, indices=kept), background_std=0.7, dtype="float64")
    np.testing.assert_allclose(
        np.asarray(masked(forecast, y_missing)), np.asarray(reduced(forecast, y[:, kept])), rtol=1e-12
    )


def test_ensemble_filter_rejects_missing_values():
    from keras_da import ETKF

    etkf = ETKF(LinearObservation(1.0, allow_missing=True), inflation=1.02)
    with pytest.raises(NotImplementedError, match="missing observations"):
        etkf(np.zeros((1, 4, 40), "float32"), np.zeros((1, 40), "float32"))
