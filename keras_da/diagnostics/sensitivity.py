"""Sensitivity of the implied covariance Pᵃ(x) to the forecast state, averaged over translations.

The third-order tensor T_{nml}(x) = ∂Pᵃ_{nm}(x)/∂x_l measures how the covariance implied by a_θ
changes with the forecast variable x_l. Row n of Pᵃ is the increment component and column m the
ζ component. On a
homogeneous periodic domain such as Lorenz 96, only relative positions matter on average, so
the tensor is averaged over the trajectory and over circular translations of the three indices:

    S[p, q] = (1/Nx) Σ_n ⟨∂Pᵃ_{n, n+p}/∂x_{n+q}⟩,   indices modulo Nx,

a 2-D map over the offset p of the ζ index and the offset q of the state index, both relative
to the output index n. A local analysis shows a pattern concentrated near p = q = 0.

This is the contraction S = ⟨C : ∇ₓ Pᵃ(x)⟩ with the translation average
[C]_{ij}^{nmk} = (1/Nx) δ_{n,i+k} δ_{m,j+k} of Bocquet et al. (2024), written with the output
index as reference instead of the state index: their map, indexed by the offsets (i, j) of the
row and column of Pᵃ relative to the state index k, is S_ref[i, j] = S[j − i, −i].

References:
    M. Bocquet et al., "Accurate deep learning-based filtering for chaotic dynamics by
    identifying instabilities without an ensemble", Chaos 34 (2024), 091104.
"""

import numpy as np
import tensorflow as tf

from keras_da.diagnostics.implied_covariance import check_has_increment

# A map that does not depend on ζ or on x has zero derivatives, not missing ones.
ZERO = tf.UnconnectedGradients.ZERO

# States differentiated per call. Each state becomes Nx² rows of one forward pass, so this bounds
# memory. The last chunk is padded, so every call has the same shape and the function traces once.
DEFAULT_STATES_PER_CALL = 4


def covariance_state_jacobian(analysis, states, states_per_call=DEFAULT_STATES_PER_CALL):
    """Return T_{nml} = ∂Pᵃ_{nm}(x)/∂x_l for single forecast states, float64 `(batch, Nx, Nx, Nx)`.

    Pᵃ_{nm} = ∂a_n/∂ζ_m at ζ = 0, so T_{nml} = ∂²a_n/∂ζ_m ∂x_l. Each state is repeated on Nx²
    rows, row (m, l) carrying the tangent e_m for ζ and e_l for x through two nested
    `tf.autodiff.ForwardAccumulator`s, so one batched forward pass returns every mixed second
    derivative, with no Python loop over components. Forward mode is used because it is much
    faster here than nesting two `batch_jacobian` calls: on a 2-core CPU with Nx = 40 and a
    16-filter `ResidualCNNAnalysis`, about 0.2 s per state against about 10 s.

    Args:
        analysis: a layer with `increment(forecast, weighted_innovation)`, such as
            `ResidualCNNAnalysis`.
        states: forecast states `(batch, Nx)`. Ensembles are not supported, because the
            derivative with respect to "the state" of an ensemble forecast is not defined.
        states_per_call: states differentiated together (memory bound). Default 4.
    """
    return np.concatenate(list(_state_jacobian_chunks(analysis, states, states_per_call)), axis=0)


def _state_jacobian_chunks(analysis, states, states_per_call):
    """Yield T for consecutive chunks of `states`, all from one traced function."""
    check_has_increment(analysis)
    states = np.asarray(states, dtype=analysis.compute_dtype)
    if states.ndim != 2:
        raise NotImplementedError(
            "The state sensitivity of Pᵃ is defined for single forecast states of shape "
            f"(batch, Nx), received shape {states.shape}. Pass one state per batch entry "
            "(for an ensemble forecast, for example its mean)."
        )
    jacobian = _state_jacobian_function(analysis, states.shape[-1])
    for start in range(0, states.shape[0], states_per_call):
        chunk = states[start : start + states_per_call]
        padding = states_per_call - chunk.shape[0]
        if padding:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], padding, axis=0)])
        result = np.asarray(jacobian(tf.constant(chunk)), dtype="float64")
        yield result[: states_per_call - padding]


def _state_jacobian_function(analysis, state_dim):
    identity = np.eye(state_dim)
    # Row r = m * Nx + l carries the tangent e_m for ζ and e_l for x.
    zeta_tangents = np.repeat(identity, state_dim, axis=0)
    state_tangents = np.tile(identity, (state_dim, 1))

    @tf.function
    def jacobian(states):
        num_states = tf.shape(states)[0]
        rows = tf.repeat(states, state_dim * state_dim, axis=0)
        zeta = tf.zeros_like(rows)
        state_tangent = tf.tile(tf.constant(state_tangents, states.dtype), [num_states, 1])
        zeta_tangent = tf.tile(tf.constant(zeta_tangents, states.dtype), [num_states, 1])
        with tf.autodiff.ForwardAccumulator(rows, state_tangent) as state_accumulator:
            with tf.autodiff.ForwardAccumulator(zeta, zeta_tangent) as zeta_accumulator:
                increment = analysis.increment(rows[:, None, :], zeta)[:, 0, :]
            covariance_column = zeta_accumulator.jvp(increment, unconnected_gradients=ZERO)
        second = state_accumulator.jvp(covariance_column, unconnected_gradients=ZERO)
        # Rows (state, m, l) hold the vector over n; reorder to [state, n, m, l].
        second = tf.reshape(second, (num_states, state_dim, state_dim, state_dim))
        return tf.transpose(second, (0, 3, 1, 2))

    return jacobian


def translation_average(tensor):
    """Average a tensor T_{nml} over circular translations of its three indices.

    Args:
        tensor: array of shape `(..., Nx, Nx, Nx)` indexed `[n, m, l]`.

    Returns:
        Float64 array S of shape `(..., Nx, Nx)` with S[p, q] = (1/Nx) Σ_n T[n, n+p, n+q]
        (indices modulo Nx); offsets p and q run from 0 to Nx − 1, so a negative offset −d is
        at index Nx − d (see `centred_offsets`).
    """
    tensor = np.asarray(tensor, dtype="float64")
    size = tensor.shape[-1]
    if tensor.ndim < 3 or tensor.shape[-3:] != (size, size, size):
        raise ValueError(
            "`tensor` must have shape (..., Nx, Nx, Nx) with three equal trailing axes, received "
            f"shape {tensor.shape}."
        )
    n = np.arange(size)[:, None, None]
    p = np.arange(size)[None, :, None]
    q = np.arange(size)[None, None, :]
    gathered = tensor[..., n, (n + p) % size, (n + q) % size]
    return gathered.mean(axis=-3)


def translation_averaged_sensitivity(analysis, states, states_per_call=DEFAULT_STATES_PER_CALL):
    """Return the sensitivity map S[p, q] averaged over `states` and over translations.

    Args:
        analysis: a layer with `increment(forecast, weighted_innovation)`.
        states: forecast states along a trajectory, `(batch, Nx)`.
        states_per_call: states differentiated together (memory bound). Default 4.

    Returns:
        Float64 array of shape `(Nx, Nx)`, offsets as in `translation_average`.
    """
    states = np.asarray(states)
    if states.ndim != 2 or states.shape[0] == 0:
        raise ValueError(
            f"`states` must have shape (batch, Nx) with batch ≥ 1, received shape {states.shape}."
        )
    total = 0.0
    for chunk in _state_jacobian_chunks(analysis, states, states_per_call):
        total = total + translation_average(chunk).sum(axis=0)
    return total / states.shape[0]


def centred_offsets(size):
    """Return the offsets −⌊Nx/2⌋ … ⌈Nx/2⌉ − 1 that `centre_offsets` puts along each axis."""
    return np.arange(size) - size // 2


def centre_offsets(sensitivity):
    """Shift a map S[p, q] so that offset zero sits in the middle of both axes, for plotting."""
    return np.fft.fftshift(np.asarray(sensitivity), axes=(-2, -1))
