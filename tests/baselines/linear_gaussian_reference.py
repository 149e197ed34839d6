"""NumPy references for the linear-Gaussian tests of the classical filters."""

import numpy as np


def random_covariance(size, rng, condition=10.0):
    """Return a random symmetric positive-definite matrix with eigenvalues in [1, condition]."""
    q, _ = np.linalg.qr(rng.standard_normal((size, size)))
    eigenvalues = np.linspace(1.0, condition, size)
    return (q * eigenvalues) @ q.T


def kalman_update(mean, covariance, observation, H, R):
    """Return the Kalman analysis mean and covariance for one state `(Nx,)` and observation `(Ny,)`."""
    innovation_covariance = H @ covariance @ H.T + R
    gain = np.linalg.solve(innovation_covariance, H @ covariance).T
    analysis_mean = mean + gain @ (observation - H @ mean)
    analysis_covariance = (np.eye(len(mean)) - gain @ H) @ covariance
    return analysis_mean, 0.5 * (analysis_covariance + analysis_covariance.T)


def ensemble_with_moments(mean, covariance, ensemble_size, rng):
    """Return an ensemble `(Ne, Nx)` whose sample mean and covariance are exactly the given ones.

    Needs Ne >= Nx + 1, so that the anomalies span the state space.
    """
    state_dim = len(mean)
    noise = rng.standard_normal((ensemble_size, state_dim))
    noise -= noise.mean(axis=0)
    # Whiten the anomalies so that their sample covariance is exactly I, then colour them.
    sample_factor = np.linalg.cholesky(noise.T @ noise / (ensemble_size - 1))
    white = np.linalg.solve(sample_factor, noise.T).T
    return mean + white @ np.linalg.cholesky(covariance).T


def sample_moments(ensemble):
    """Return the sample mean `(..., Nx)` and covariance `(..., Nx, Nx)` of `(..., Ne, Nx)`."""
    ensemble = np.asarray(ensemble, dtype="float64")
    mean = ensemble.mean(axis=-2)
    anomalies = ensemble - mean[..., None, :]
    covariance = np.swapaxes(anomalies, -1, -2) @ anomalies / (ensemble.shape[-2] - 1)
    return mean, covariance
