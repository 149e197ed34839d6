import numpy as np
import pytest

from keras_da.diagnostics import (
    bures_wasserstein_distance,
    eigenspectra,
    mean_eigenspectrum,
    symmetric_sqrtm,
)


def random_covariance(size, seed, rank=None):
    factor = np.random.default_rng(seed).standard_normal((size, rank or size))
    return factor @ factor.T / size


def random_rotation(size, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((size, size)))
    return q


def test_distance_zero_for_equal_matrices():
    matrix = random_covariance(12, seed=0)
    assert bures_wasserstein_distance(matrix, matrix) < 1e-6


def test_distance_of_commuting_matrices():
    # A and B share eigenvectors, so d(A, B) = ‖A^½ − B^½‖_F = ‖√a − √b‖.
    rotation = random_rotation(6, seed=1)
    a = np.array([4.0, 1.0, 0.25, 2.0, 0.0, 9.0])
    b = np.array([1.0, 1.0, 1.0, 0.5, 3.0, 0.0])
    first = rotation @ np.diag(a) @ rotation.T
    second = rotation @ np.diag(b) @ rotation.T
    expected = np.linalg.norm(symmetric_sqrtm(first) - symmetric_sqrtm(second))

    assert bures_wasserstein_distance(first, second) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(np.linalg.norm(np.sqrt(a) - np.sqrt(b)), rel=1e-9)


def test_distance_is_symmetric():
    first = random_covariance(10, seed=2)
    second = random_covariance(10, seed=3)
    forward = bures_wasserstein_distance(first, second)
    backward = bures_wasserstein_distance(second, first)
    assert forward > 0.1
    assert forward == pytest.approx(backward, rel=1e-10)


def test_distance_finite_for_rank_deficient_inputs():
    rank_one = random_covariance(8, seed=4, rank=1)
    rank_three = random_covariance(8, seed=5, rank=3)
    # Round-off makes an ensemble covariance slightly indefinite and asymmetric.
    noisy = rank_three + 1e-12 * np.random.default_rng(6).standard_normal((8, 8))

    distance = bures_wasserstein_distance(rank_one, noisy)
    to_zero = bures_wasserstein_distance(np.zeros((8, 8)), rank_three)

    assert np.isfinite(distance)
    assert distance > 0
    assert to_zero == pytest.approx(np.sqrt(np.trace(rank_three)), rel=1e-9)


def test_distance_satisfies_triangle_inequality():
    a, b, c = (random_covariance(7, seed=s) for s in (7, 8, 9))
    assert bures_wasserstein_distance(a, c) <= (
        bures_wasserstein_distance(a, b) + bures_wasserstein_distance(b, c) + 1e-12
    )


def test_distance_batches_and_broadcasts():
    batch = np.stack([random_covariance(5, seed=s) for s in range(4)])
    identity = np.eye(5)

    distances = bures_wasserstein_distance(batch, identity)

    assert distances.shape == (4,)
    for index in range(4):
        assert distances[index] == pytest.approx(bures_wasserstein_distance(batch[index], identity))


def test_distance_of_scalar_multiples_of_identity():
    # d(σ² I, τ² I) = √N |σ − τ|.
    assert bures_wasserstein_distance(np.eye(3), 4.0 * np.eye(3)) == pytest.approx(np.sqrt(3.0))


def test_distance_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="same size"):
        bures_wasserstein_distance(np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match="square"):
        bures_wasserstein_distance(np.ones((3, 4)), np.eye(3))


def test_square_root_squares_back():
    matrix = random_covariance(9, seed=10, rank=4)
    root = symmetric_sqrtm(matrix)
    np.testing.assert_allclose(root @ root, matrix, atol=1e-10)
    np.testing.assert_allclose(root, root.T, atol=1e-12)


def test_eigenspectra_sorted_and_averaged():
    rotation = random_rotation(4, seed=11)
    first = rotation @ np.diag([1.0, 3.0, 2.0, 0.0]) @ rotation.T
    second = np.diag([5.0, 1.0, 1.0, 1.0])

    spectra = eigenspectra(np.stack([first, second]))

    np.testing.assert_allclose(spectra[0], [3.0, 2.0, 1.0, 0.0], atol=1e-12)
    mean = mean_eigenspectrum(np.stack([first, second]))
    np.testing.assert_allclose(mean, [4.0, 1.5, 1.0, 0.5], atol=1e-12)
