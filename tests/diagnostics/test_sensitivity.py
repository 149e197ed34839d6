import numpy as np
import pytest
from diagnostic_layers import StateDependentCovarianceAnalysis, circulant_sensitivity_tensor

from keras_da import ResidualCNNAnalysis, ThreeDVar
from keras_da.diagnostics import (
    centre_offsets,
    centred_offsets,
    covariance_state_jacobian,
    implied_covariance_jacobian,
    translation_average,
    translation_averaged_sensitivity,
)

STATE_DIM = 6


def random_pattern(seed=0):
    return np.random.default_rng(seed).standard_normal((STATE_DIM, STATE_DIM))


def random_states(count, seed=1):
    return np.random.default_rng(seed).standard_normal((count, STATE_DIM))


def test_translation_average_of_circulant_tensor_is_its_pattern():
    pattern = random_pattern()
    tensor = circulant_sensitivity_tensor(pattern)
    np.testing.assert_allclose(translation_average(tensor), pattern, atol=1e-14)


def test_translation_average_divides_a_single_row():
    # Only output index n = 0 responds: the average over n is that row's pattern / Nx.
    tensor = np.zeros((STATE_DIM,) * 3)
    tensor[0] = random_pattern(seed=2)
    expected = tensor[0] / STATE_DIM
    np.testing.assert_allclose(translation_average(tensor), expected, atol=1e-14)


def test_state_jacobian_recovers_known_tensor():
    tensor = circulant_sensitivity_tensor(random_pattern(seed=3))
    tensor[1, 2, 3] += 0.5  # break the translation symmetry: T is returned as is
    analysis = StateDependentCovarianceAnalysis(tensor, dtype="float64")

    jacobian = covariance_state_jacobian(analysis, random_states(3), states_per_call=2)

    assert jacobian.shape == (3, STATE_DIM, STATE_DIM, STATE_DIM)
    np.testing.assert_allclose(jacobian, np.broadcast_to(tensor, jacobian.shape), atol=1e-12)


def test_sensitivity_of_equivariant_map_is_its_pattern():
    pattern = random_pattern(seed=4)
    analysis = StateDependentCovarianceAnalysis(circulant_sensitivity_tensor(pattern), dtype="float64")

    sensitivity = translation_averaged_sensitivity(analysis, random_states(5), states_per_call=2)

    np.testing.assert_allclose(sensitivity, pattern, atol=1e-12)


def test_implied_covariance_of_state_dependent_map():
    tensor = circulant_sensitivity_tensor(random_pattern(seed=5))
    analysis = StateDependentCovarianceAnalysis(tensor, dtype="float64")
    states = random_states(2)

    implied = implied_covariance_jacobian(analysis, states)

    np.testing.assert_allclose(implied, np.einsum("nml,bl->bnm", tensor, states), atol=1e-12)


def test_state_jacobian_matches_finite_differences_on_network():
    analysis = ResidualCNNAnalysis(filters=4, num_blocks=1, convs_per_block=1, dtype="float64")
    analysis.build((None, 1, STATE_DIM))
    rng = np.random.default_rng(6)
    for weight in analysis.weights:
        weight.assign(0.4 * rng.standard_normal(weight.shape))
    state = 8.0 + 2.0 * random_states(1)
    step = 1e-5

    jacobian = covariance_state_jacobian(analysis, state)[0]
    index = 2
    shifted = [state.copy(), state.copy()]
    shifted[0][0, index] += step
    shifted[1][0, index] -= step
    plus, minus = (implied_covariance_jacobian(analysis, s)[0] for s in shifted)

    assert np.abs(jacobian[:, :, index]).max() > 1e-4
    np.testing.assert_allclose(jacobian[:, :, index], (plus - minus) / (2 * step), atol=1e-8)


def test_centred_offsets_put_zero_in_the_middle():
    offsets = centred_offsets(5)
    sensitivity = np.zeros((5, 5))
    sensitivity[0, 1] = 1.0  # p = 0, q = 1

    centred = centre_offsets(sensitivity)

    np.testing.assert_array_equal(offsets, [-2, -1, 0, 1, 2])
    row, column = np.argwhere(centred == 1.0)[0]
    assert (offsets[row], offsets[column]) == (0, 1)


def test_sensitivity_rejects_ensembles_and_missing_increment():
    analysis = StateDependentCovarianceAnalysis(np.zeros((STATE_DIM,) * 3))
    with pytest.raises(NotImplementedError, match="single forecast states"):
        covariance_state_jacobian(analysis, np.zeros((2, 3, STATE_DIM)))
    with pytest.raises(TypeError, match="increment"):
        covariance_state_jacobian(ThreeDVar(), np.zeros((2, STATE_DIM)))


def test_translation_average_rejects_wrong_shape():
    with pytest.raises(ValueError, match="three equal trailing axes"):
        translation_average(np.zeros((4, 4, 5)))
