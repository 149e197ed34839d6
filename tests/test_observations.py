import keras
import numpy as np
import pytest

from keras_da import LinearObservation


def test_identity_operator():
    H = LinearObservation(variance=2.0)
    x = np.arange(12.0).reshape(2, 6).astype("float32")
    np.testing.assert_array_equal(np.asarray(H(x)), x)
    np.testing.assert_array_equal(H.matrix(6), np.eye(6))
    np.testing.assert_array_equal(H.variances(6), np.full(6, 2.0))


def test_stride_and_indices_select_variables():
    x = np.arange(10.0)[None].astype("float32")
    np.testing.assert_array_equal(np.asarray(LinearObservation(stride=3)(x)), [[0.0, 3.0, 6.0, 9.0]])
    np.testing.assert_array_equal(
        np.asarray(LinearObservation(stride=3, offset=1)(x)), [[1.0, 4.0, 7.0]]
    )
    np.testing.assert_array_equal(np.asarray(LinearObservation(indices=[7, 2])(x)), [[7.0, 2.0]])


def test_adjoint_is_transpose_of_matrix():
    H = LinearObservation(indices=[4, 0, 2])
    v = np.random.default_rng(0).standard_normal((5, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(H.adjoint(v, 6)), v @ H.matrix(6), rtol=1e-6)
    x = np.random.default_rng(1).standard_normal((5, 6)).astype("float32")
    # <H x, v> = <x, Hᵀ v>
    lhs = np.sum(np.asarray(H(x)) * v)
    rhs = np.sum(x * np.asarray(H.adjoint(v, 6)))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5)


def test_precision_weighted_innovation_matches_formula():
    variances = [0.5, 2.0, 4.0]
    H = LinearObservation(variance=variances, indices=[1, 3, 4])
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 5))
    y = rng.standard_normal((4, 3))
    Hm, Rm = H.matrix(5), H.covariance(5)
    expected = (y - x @ Hm.T) @ np.linalg.inv(Rm) @ Hm
    np.testing.assert_allclose(np.asarray(H.precision_weighted_innovation(y, x)), expected, rtol=1e-12)


def test_noise_has_requested_variance():
    H = LinearObservation(variance=[0.25, 4.0])
    noise = np.asarray(H.sample_noise((20000,), 2, seed=np.array([1, 2]), dtype="float64"))
    np.testing.assert_allclose(noise.var(axis=0), [0.25, 4.0], rtol=0.05)
    np.testing.assert_allclose(noise.mean(axis=0), 0.0, atol=0.05)


@pytest.mark.parametrize("variance", [0.0, -1.0, float("nan"), float("inf"), [1.0, -2.0], []])
def test_bad_variances_raise(variance):
    with pytest.raises(ValueError, match="variance"):
        LinearObservation(variance=variance)


def test_variance_count_must_match_observations():
    H = LinearObservation(variance=[1.0, 2.0], stride=2)
    with pytest.raises(ValueError, match="lists 2 values but H observes 20"):
        H.variances(40)


def test_observation_size_mismatch_raises():
    H = LinearObservation(stride=2)
    with pytest.raises(ValueError, match="39 entries.*observes 20"):
        H.check_observation(np.zeros((1, 39)), 40)


def test_non_finite_observations_raise():
    H = LinearObservation()
    y = np.zeros((2, 40))
    y[1, 3] = np.nan
    with pytest.raises(ValueError, match="1 non-finite"):
        H.check_observation(y, 40)


def test_bad_structure_raises():
    with pytest.raises(ValueError, match="either `indices` or `stride`"):
        LinearObservation(indices=[1], stride=2)
    with pytest.raises(ValueError, match="distinct"):
        LinearObservation(indices=[1, 1])
    with pytest.raises(ValueError, match="out of range"):
        LinearObservation(indices=[50]).observed_indices(40)


def test_config_round_trip():
    H = LinearObservation(variance=[1.0, 2.0, 3.0], indices=[0, 5, 9], name="obs")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(H))
    np.testing.assert_array_equal(clone.matrix(10), H.matrix(10))
    np.testing.assert_array_equal(clone.variances(10), H.variances(10))
