"""Ensemble-space algebra shared by the classical ensemble filters.

Conventions: an ensemble E has shape `(batch, Ne, Nx)` with one member per row; x̄ is its mean
and A = E − x̄ its unnormalised anomalies, so the sample covariance is Aᵀ A / (Ne − 1). With a
selection operator H and diagonal R, the filters work with the observation-space anomalies
scaled by R^{-1/2}, S = H(A) R^{-1/2} `(batch, Ne, Ny)`, and the scaled innovation
d = R^{-1/2} (y − H x̄) `(batch, Ny)`. Every analysis of the linear-Gaussian ensemble filters
is then expressed through the Gram matrix G = S Sᵀ `(batch, Ne, Ne)`.

The functions work in the dtype of their inputs, so float64 ensembles give float64 analyses.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops


def check_inflation(inflation):
    """Return `inflation` as a float, or raise `ValueError` unless it is finite and >= 1."""
    if isinstance(inflation, bool) or not isinstance(inflation, (int, float, np.floating)):
        raise ValueError(
            f"`inflation` must be a number >= 1, received inflation={inflation!r}."
        )
    if not math.isfinite(inflation) or inflation < 1.0:
        raise ValueError(
            "`inflation` multiplies the forecast anomalies and must be a finite number >= 1 "
            f"(1 means no inflation), received inflation={inflation!r}."
        )
    return float(inflation)


def split_ensemble(ensemble):
    """Return the mean x̄ `(batch, Nx)` and unnormalised anomalies A = E − x̄ `(batch, Ne, Nx)`."""
    mean = ops.mean(ensemble, axis=1)
    return mean, ensemble - ops.expand_dims(mean, axis=1)


def inflate_anomalies(ensemble, inflation):
    """Multiply the anomalies of `ensemble` `(batch, Ne, Nx)` by `inflation`, keeping its mean."""
    if inflation == 1.0:
        return ensemble
    mean = ops.mean(ensemble, axis=1, keepdims=True)
    return mean + inflation * (ensemble - mean)


def inverse_observation_std(observation_operator, state_dim, dtype):
    """Return R^{-1/2} as a vector `(Ny,)` of the given dtype."""
    variances = observation_operator.variances(state_dim)
    return ops.convert_to_tensor(1.0 / np.sqrt(variances), dtype=dtype)


def scaled_observation_anomalies(observation_operator, anomalies):
    """Return S = H(A) R^{-1/2}, shape `(batch, Ne, Ny)`, for anomalies A `(batch, Ne, Nx)`."""
    state_dim = anomalies.shape[-1]
    scale = inverse_observation_std(observation_operator, state_dim, anomalies.dtype)
    return observation_operator(anomalies) * scale


def scaled_innovation(observation_operator, observation, mean):
    """Return d = R^{-1/2} (y − H x̄), shape `(batch, Ny)`."""
    state_dim = mean.shape[-1]
    observation = ops.cast(observation, mean.dtype)
    scale = inverse_observation_std(observation_operator, state_dim, mean.dtype)
    return (observation - observation_operator(mean)) * scale


def gram_eigendecomposition(scaled_anomalies):
    """Return the eigenvalues λ `(batch, Ne)` and eigenvectors V `(batch, Ne, Ne)` of G = S Sᵀ.

    G is symmetric positive semi-definite. Round-off can make its smallest eigenvalues slightly
    negative, so they are clipped at zero.
    """
    gram = tf.linalg.matmul(scaled_anomalies, scaled_anomalies, transpose_b=True)
    eigenvalues, eigenvectors = tf.linalg.eigh(gram)
    return tf.maximum(eigenvalues, 0.0), eigenvectors


def project_innovation(scaled_anomalies, innovation, eigenvectors):
    """Return g = Vᵀ S d `(batch, Ne)`, the innovation seen in the eigenbasis of G."""
    anomalies_dot_innovation = tf.linalg.matvec(scaled_anomalies, innovation)
    return tf.linalg.matvec(eigenvectors, anomalies_dot_innovation, transpose_a=True)


def eigen_function(eigenvectors, values):
    """Return V diag(values) Vᵀ `(batch, Ne, Ne)` for V `(batch, Ne, Ne)` and values `(batch, Ne)`."""
    return tf.linalg.matmul(eigenvectors * values[:, None, :], eigenvectors, transpose_b=True)


def apply_weights(mean, anomalies, mean_weights, transform):
    """Return the analysis ensemble x̄ + wᵀ A + T A, shape `(batch, Ne, Nx)`.

    Args:
        mean: forecast mean x̄, `(batch, Nx)`.
        anomalies: forecast anomalies A, `(batch, Ne, Nx)`.
        mean_weights: w `(batch, Ne)`; the analysis mean is x̄ + Σ_i w_i A_i.
        transform: T `(batch, Ne, Ne)`; member j of the analysis anomalies is Σ_i T_ji A_i.
    """
    # Member j is x̄ + Σ_i (w_i + T_ji) A_i: one batched product instead of two, because small
    # batched matrix products have a large fixed cost on CPU.
    return mean[:, None, :] + tf.linalg.matmul(transform + mean_weights[:, None, :], anomalies)


def orthonormal_complement_of_ones(ensemble_size, dtype="float64"):
    """Return Ω `(Ne, Ne − 1)`, an orthonormal basis of the vectors whose entries sum to zero."""
    ones = np.ones((ensemble_size, 1)) / np.sqrt(ensemble_size)
    basis, _ = np.linalg.qr(np.concatenate([ones, np.eye(ensemble_size)[:, :-1]], axis=1))
    return basis[:, 1:].astype(dtype)


def random_mean_preserving_rotation(batch_size, ensemble_size, seed, dtype):
    """Draw random orthogonal matrices U `(batch, Ne, Ne)` with U 1 = 1 and Uᵀ 1 = 1.

    U = 1 1ᵀ / Ne + Ω Q Ωᵀ, where Ω spans the vectors orthogonal to 1 and Q is drawn from the
    Haar measure on the orthogonal group of size Ne − 1 (QR decomposition of a Gaussian matrix
    with the signs of R's diagonal moved into Q). Left-multiplying anomalies by U keeps their zero
    mean and their sample covariance.

    Args:
        batch_size: the number of matrices, a Python int or a scalar tensor.
        ensemble_size: Ne, a Python int >= 2.
        seed: a `keras.random.SeedGenerator` or an int, as `keras.random.normal` takes.
        dtype: the floating dtype of the result.
    """
    size = ensemble_size - 1
    gaussian = keras.random.normal((batch_size, size, size), dtype=dtype, seed=seed)
    q, r = tf.linalg.qr(gaussian)
    signs = tf.where(tf.linalg.diag_part(r) < 0, tf.constant(-1.0, dtype), tf.constant(1.0, dtype))
    q = q * signs[:, None, :]
    basis = tf.constant(orthonormal_complement_of_ones(ensemble_size), dtype=dtype)
    rotation = tf.einsum("ik,bkl,jl->bij", basis, q, basis)
    return rotation + tf.constant(1.0 / ensemble_size, dtype=dtype)
