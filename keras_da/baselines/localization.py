"""Gaspari–Cohn covariance localisation on a periodic 1-D grid.

References:
    G. Gaspari and S. E. Cohn, "Construction of correlation functions in two and three
    dimensions", Q. J. R. Meteorol. Soc. 125 (1999), pp. 723–757 (the fifth-order piecewise
    rational function, their Eq. 4.10).
"""

import math

import numpy as np
import tensorflow as tf

from keras_da.baselines import ensemble_space


def check_localization_radius(radius):
    """Return `radius` as a float, or None; raise `ValueError` unless it is positive and finite."""
    if radius is None:
        return None
    if isinstance(radius, bool) or not isinstance(radius, (int, float, np.floating, np.integer)):
        raise ValueError(
            "`localization_radius` must be a positive number of grid points or None, received "
            f"localization_radius={radius!r}."
        )
    if not math.isfinite(radius) or radius <= 0:
        raise ValueError(
            "`localization_radius` must be a positive finite number of grid points (the "
            f"Gaspari–Cohn half-width) or None, received localization_radius={radius!r}."
        )
    return float(radius)


def gaspari_cohn(distance, radius):
    """Return the Gaspari–Cohn correlation at `distance` (NumPy array) for half-width `radius`.

    The function is 1 at distance 0, compactly supported on [0, 2 · radius], and positive
    definite in up to three dimensions, so tapering a covariance with it keeps it positive
    semi-definite.
    """
    z = np.abs(np.asarray(distance, dtype="float64")) / radius
    near = z <= 1.0
    far = (z > 1.0) & (z < 2.0)
    taper = np.zeros_like(z)
    zn = z[near]
    taper[near] = -0.25 * zn**5 + 0.5 * zn**4 + 0.625 * zn**3 - (5.0 / 3.0) * zn**2 + 1.0
    zf = z[far]
    taper[far] = (
        zf**5 / 12.0 - 0.5 * zf**4 + 0.625 * zf**3 + (5.0 / 3.0) * zf**2 - 5.0 * zf + 4.0
        - 2.0 / (3.0 * zf)
    )
    return taper


def periodic_localization_matrix(state_dim, radius):
    """Return the taper ρ `(Nx, Nx)` with ρ_ij = GC(periodic distance between i and j)."""
    index = np.arange(state_dim)
    separation = np.abs(index[:, None] - index[None, :])
    distance = np.minimum(separation, state_dim - separation)
    return gaspari_cohn(distance, radius)


def localized_gain_increments(observation_operator, anomalies, scaled_innovations, radius):
    """Return the increments K δ_j of every member with a localised sample covariance.

    P = ρ ∘ (Aᵀ A / (Ne − 1)) and K = P Hᵀ (H P Hᵀ + R)⁻¹, written with the scaled innovations
    δ_j = R^{-1/2} v_j as K v_j = P Hᵀ R^{-1/2} (R^{-1/2} H P Hᵀ R^{-1/2} + I)⁻¹ δ_j.

    Args:
        observation_operator: a `LinearObservation`.
        anomalies: forecast anomalies A, `(batch, Ne, Nx)`.
        scaled_innovations: δ_j, `(batch, Ne, Ny)`.
        radius: Gaspari–Cohn half-width in grid points.

    Returns:
        The increments, `(batch, Ne, Nx)`.
    """
    ensemble_size = anomalies.shape[1]
    state_dim = anomalies.shape[-1]
    dtype = anomalies.dtype
    taper = tf.constant(periodic_localization_matrix(state_dim, radius), dtype=dtype)
    covariance = tf.linalg.matmul(anomalies, anomalies, transpose_a=True) / (ensemble_size - 1)
    covariance *= taper
    inverse_std = ensemble_space.inverse_observation_std(observation_operator, state_dim, dtype)
    # P Hᵀ R^{-1/2}, (batch, Nx, Ny): H acts on the last axis of the symmetric P.
    gain_numerator = observation_operator(covariance) * inverse_std
    innovation_covariance = (
        observation_operator(tf.linalg.matrix_transpose(gain_numerator)) * inverse_std
    )
    observation_dim = innovation_covariance.shape[-1]
    innovation_covariance += tf.eye(observation_dim, dtype=dtype)
    solved = tf.linalg.cholesky_solve(
        tf.linalg.cholesky(innovation_covariance), tf.linalg.matrix_transpose(scaled_innovations)
    )
    return tf.linalg.matrix_transpose(tf.linalg.matmul(gain_numerator, solved))
