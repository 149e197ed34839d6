import numpy as np
import pytest
from diagnostic_layers import LinearCovarianceAnalysis

from keras_da import FreeRun, LinearObservation, ResidualCNNAnalysis
from keras_da.diagnostics import summarize_bias, zero_innovation_bias, zero_innovation_increment

STATE_DIM = 8


def test_bias_of_known_zero_innovation_output():
    bias_vector = np.array([3.0, -1.0, 0.0, 2.0, 1.0, -2.0, 0.5, 0.0])
    analysis = LinearCovarianceAnalysis(
        2.0 * np.eye(STATE_DIM), bias=bias_vector, observation_operator=LinearObservation(0.3)
    )
    states = np.random.default_rng(0).standard_normal((5, STATE_DIM)).astype("float32")

    increments = zero_innovation_increment(analysis, states)
    bias = zero_innovation_bias(analysis, states, states_per_call=2)

    np.testing.assert_allclose(increments, np.broadcast_to(bias_vector, (5, STATE_DIM)), rtol=1e-6)
    expected = np.linalg.norm(bias_vector) / np.sqrt(STATE_DIM)
    np.testing.assert_allclose(bias, np.full(5, expected), rtol=1e-6)


def test_bias_zero_for_free_run_and_untrained_network():
    states = 8.0 + np.random.default_rng(1).standard_normal((3, 2, STATE_DIM)).astype("float32")
    network = ResidualCNNAnalysis(filters=4, num_blocks=1, convs_per_block=1)
    network.build((None, 2, STATE_DIM))  # the output convolution starts at zero

    assert np.all(zero_innovation_bias(FreeRun(), states) == 0.0)
    assert np.all(zero_innovation_bias(network, states) == 0.0)


def test_summarize_bias_statistics():
    summary = summarize_bias([1.0, 2.0, 3.0, 6.0])
    assert summary["mean"] == 3.0
    assert summary["std"] == pytest.approx(np.std([1.0, 2.0, 3.0, 6.0]))
    assert summary["min"] == 1.0
    assert summary["max"] == 6.0
    assert summary["num_states"] == 4


def test_summarize_bias_rejects_empty_series():
    with pytest.raises(ValueError, match="empty"):
        summarize_bias([])
