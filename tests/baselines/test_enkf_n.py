import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_da import LinearObservation
from keras_da.baselines import EnKFN, enkf_n_dual_cost, minimize_enkf_n_dual
from keras_da.baselines import ensemble_space

ENSEMBLE_SIZE = 6
STATE_DIM = 5
# Innovation scales from well inside the ensemble spread to far outside it (where the EnKF-N
# inflates strongly).
INNOVATION_SCALES = np.array([0.1, 1.0, 3.0, 10.0, 40.0])


def random_problem(seed, operator=None):
    """Return forecast ensembles `(5, Ne, Nx)` and observations, one per innovation scale."""
    operator = operator or LinearObservation(variance=[0.5, 1.0, 2.0, 1.0], indices=[0, 1, 3, 4])
    rng = np.random.default_rng(seed)
    batch = len(INNOVATION_SCALES)
    ensembles = rng.standard_normal((batch, ENSEMBLE_SIZE, STATE_DIM))
    means = ensembles.mean(axis=1)
    observed = np.asarray(operator(means))
    noise = rng.standard_normal(observed.shape)
    observations = observed + INNOVATION_SCALES[:, None] * noise
    return operator, ensembles, observations


def ensemble_space_quantities(operator, ensembles, observations):
    mean, anomalies = ensemble_space.split_ensemble(tf.constant(ensembles))
    scaled = ensemble_space.scaled_observation_anomalies(operator, anomalies)
    innovation = ensemble_space.scaled_innovation(operator, tf.constant(observations), mean)
    eigenvalues, eigenvectors = ensemble_space.gram_eigendecomposition(scaled)
    projected = ensemble_space.project_innovation(scaled, innovation, eigenvectors)
    norm = tf.reduce_sum(innovation**2, axis=-1)
    return np.asarray(scaled), np.asarray(innovation), eigenvalues, projected, norm


def primal_cost(w, scaled, innovation, epsilon, count):
    """J(w) = ½ ‖d − Sᵀ w‖² + (c / 2) ln(ε_N + ‖w‖²), in NumPy."""
    residual = innovation - scaled.T @ w
    return 0.5 * residual @ residual + 0.5 * count * np.log(epsilon + w @ w)


@pytest.mark.parametrize("count_offset", [0.0, 1.0])
def test_dual_minimum_matches_brute_force_scan(count_offset):
    operator, ensembles, observations = random_problem(1)
    layer = EnKFN(operator, count_offset=count_offset)
    epsilon, count = layer.hyperprior(ENSEMBLE_SIZE)
    _, _, eigenvalues, projected, norm = ensemble_space_quantities(operator, ensembles, observations)
    zeta = np.asarray(minimize_enkf_n_dual(eigenvalues, projected, norm, epsilon, count))

    scan = np.broadcast_to(
        count / epsilon * np.geomspace(1e-9, 1.0, 200001), (len(INNOVATION_SCALES), 200001)
    )
    scan_cost = np.asarray(enkf_n_dual_cost(scan, eigenvalues, projected, norm, epsilon, count))
    best = scan_cost.argmin(axis=1)
    best_zeta = scan[np.arange(len(best)), best]
    found_cost = np.asarray(
        enkf_n_dual_cost(zeta[:, None], eigenvalues, projected, norm, epsilon, count)
    )[:, 0]
    # Grid points are 1.0e-4 apart in relative terms.
    np.testing.assert_allclose(zeta, best_zeta, rtol=2e-4)
    assert np.all(found_cost <= scan_cost.min(axis=1) + 1e-12)
    # Large innovations call for a small prior precision, that is a large inflation.
    assert np.all(np.diff(zeta) < 0), zeta


def test_dual_minimum_equals_primal_minimum():
    operator, ensembles, observations = random_problem(2)
    epsilon, count = EnKFN(operator).hyperprior(ENSEMBLE_SIZE)
    scaled, innovation, eigenvalues, projected, norm = ensemble_space_quantities(
        operator, ensembles, observations
    )
    zeta = minimize_enkf_n_dual(eigenvalues, projected, norm, epsilon, count)
    dual = np.asarray(enkf_n_dual_cost(zeta[:, None], eigenvalues, projected, norm, epsilon, count))
    rng = np.random.default_rng(3)
    for k, zeta_k in enumerate(np.asarray(zeta)):
        gram = scaled[k] @ scaled[k].T
        w = np.linalg.solve(gram + zeta_k * np.eye(ENSEMBLE_SIZE), scaled[k] @ innovation[k])
        minimum = primal_cost(w, scaled[k], innovation[k], epsilon, count)
        assert minimum == pytest.approx(dual[k, 0], rel=1e-10, abs=1e-10)
        # w* is a minimum of the primal cost: random nearby points cost more.
        for _ in range(50):
            step = 1e-3 * rng.standard_normal(ENSEMBLE_SIZE)
            assert primal_cost(w + step, scaled[k], innovation[k], epsilon, count) >= minimum


def reference_analysis(ensemble, observation, operator, epsilon, count):
    """EnKF-N analysis in NumPy: Newton iterations on the primal cost and the full Hessian."""
    H = operator.matrix(STATE_DIM)
    inverse_std = 1.0 / np.sqrt(operator.variances(STATE_DIM))
    mean = ensemble.mean(axis=0)
    anomalies = ensemble - mean
    scaled = (anomalies @ H.T) * inverse_std
    innovation = (observation - H @ mean) * inverse_std
    w = np.zeros(ENSEMBLE_SIZE)

    def hessian(w):
        radius = epsilon + w @ w
        return (
            scaled @ scaled.T + count / radius * np.eye(ENSEMBLE_SIZE)
            - 2.0 * count * np.outer(w, w) / radius**2
        )

    for _ in range(100):
        gradient = -scaled @ (innovation - scaled.T @ w) + count * w / (epsilon + w @ w)
        step = np.linalg.solve(hessian(w), gradient)
        length = 1.0
        while primal_cost(w - length * step, scaled, innovation, epsilon, count) > primal_cost(
            w, scaled, innovation, epsilon, count
        ) and length > 1e-8:
            length /= 2.0
        w = w - length * step
    values, vectors = np.linalg.eigh(hessian(w))
    transform = (vectors * np.sqrt((ENSEMBLE_SIZE - 1) / values)) @ vectors.T
    return mean + w @ anomalies + transform @ anomalies


def test_enkf_n_analysis_matches_primal_reference():
    operator, ensembles, observations = random_problem(4)
    layer = EnKFN(operator, dtype="float64")
    epsilon, count = layer.hyperprior(ENSEMBLE_SIZE)
    analysis = np.asarray(layer(ensembles, observations))
    for k in range(len(INNOVATION_SCALES)):
        expected = reference_analysis(ensembles[k], observations[k], operator, epsilon, count)
        np.testing.assert_allclose(analysis[k], expected, rtol=0, atol=1e-8)


def test_approximate_hessian_gives_etkf_transform():
    operator, ensembles, observations = random_problem(5)
    layer = EnKFN(operator, rank_one_correction=False, dtype="float64")
    epsilon, count = layer.hyperprior(ENSEMBLE_SIZE)
    scaled, innovation, eigenvalues, projected, norm = ensemble_space_quantities(
        operator, ensembles, observations
    )
    zeta = np.asarray(minimize_enkf_n_dual(eigenvalues, projected, norm, epsilon, count))
    analysis = np.asarray(layer(ensembles, observations))
    for k in range(len(INNOVATION_SCALES)):
        # The ETKF update with the prior precision ζ* in place of Ne − 1.
        precision = scaled[k] @ scaled[k].T + zeta[k] * np.eye(ENSEMBLE_SIZE)
        weights = np.linalg.solve(precision, scaled[k] @ innovation[k])
        values, vectors = np.linalg.eigh(precision)
        transform = (vectors * np.sqrt((ENSEMBLE_SIZE - 1) / values)) @ vectors.T
        mean = ensembles[k].mean(axis=0)
        anomalies = ensembles[k] - mean
        expected = mean + weights @ anomalies + transform @ anomalies
        np.testing.assert_allclose(analysis[k], expected, rtol=0, atol=1e-10)


def test_enkf_n_float32_runs_in_graph():
    operator, ensembles, observations = random_problem(6)
    layer = EnKFN(operator)
    compiled = tf.function(lambda e, y: layer(e, y))
    single = np.asarray(compiled(ensembles.astype("float32"), observations.astype("float32")))
    double = np.asarray(EnKFN(operator, dtype="float64")(ensembles, observations))
    np.testing.assert_allclose(single, double, atol=2e-3)


@pytest.mark.parametrize(
    "settings",
    [
        {"epsilon": 0.0},
        {"epsilon": -1.0},
        {"epsilon": float("nan")},
        {"count_offset": -1.0},
        {"count_offset": float("inf")},
    ],
)
def test_enkf_n_rejects_invalid_settings(settings):
    with pytest.raises(ValueError, match=next(iter(settings))):
        EnKFN(**settings)


def test_enkf_n_rejects_single_member():
    with pytest.raises(ValueError, match="at least 2 ensemble members"):
        EnKFN()(np.zeros((2, 1, 4), "float32"), np.zeros((2, 4), "float32"))


def test_enkf_n_config_round_trip():
    operator, ensembles, observations = random_problem(7)
    original = EnKFN(
        operator, epsilon=1.2, count_offset=0.0, rank_one_correction=False, dtype="float64"
    )
    restored = EnKFN.from_config(original.get_config())
    deserialized = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(original)
    )
    expected = np.asarray(original(ensembles, observations))
    for layer in (restored, deserialized):
        assert (layer.epsilon, layer.count_offset, layer.rank_one_correction) == (1.2, 0.0, False)
        np.testing.assert_array_equal(np.asarray(layer(ensembles, observations)), expected)
