"""The gain K(x) and analysis error covariance Pᵃ(x) implied by an analysis.

To first order in the innovation δ = y − H x, a learned analysis a_θ behaves as a Kalman update:

    a_θ(x, Hᵀ R⁻¹ δ) ≈ a_θ(x, 0) + K(x) δ,   K(x) = Pᵃ(x) Hᵀ R⁻¹,

so with ζ = Hᵀ R⁻¹ δ, a_θ(x, ζ) ≈ a_θ(x, 0) + Pᵃ(x) ζ: the network implies an analysis error
covariance Pᵃ(x) from the forecast x alone. This module estimates K(x) and Pᵃ(x) in two ways:

- by least squares over sampled innovations δ_j ~ N(0, s² R), which needs only the analysis's
  call and so works for every `AnalysisLayer`, learned or classical;
- by automatic differentiation at zero innovation: ∂a/∂δ gives K, and ∂a/∂ζ gives Pᵃ directly
  for layers that expose `increment(forecast, weighted_innovation)` as `ResidualCNNAnalysis` does.

The two agree when the analysis is linear in the innovation. On a trained network, their
difference measures its nonlinearity over innovations of the sampled size s.

States are `(batch, Nx)`, one forecast state per batch entry that the analysis receives as an
ensemble of one member, or forecast ensembles `(batch, Ne, Nx)`. The increment is that of the
ensemble mean.

References:
    M. Bocquet et al., "Accurate deep learning-based filtering for chaotic dynamics by
    identifying instabilities without an ensemble", Chaos 34 (2024), 091104.
"""

import numpy as np
import tensorflow as tf
from keras import ops

# Rows (states × innovation samples) sent through the analysis in one call. It bounds the memory
# of the least-squares estimate, not its result.
DEFAULT_ROWS_PER_CALL = 8192

# States differentiated per Jacobian call, a memory bound.
DEFAULT_STATES_PER_CALL = 1024

# An analysis that ignores the innovation (the free run) has a zero gain, not a missing one.
ZERO = tf.UnconnectedGradients.ZERO


def as_forecast_ensemble(forecast, dtype=None):
    """Return `forecast` as an ensemble `(batch, Ne, Nx)`, giving a state `(batch, Nx)` Ne = 1.

    Args:
        forecast: states `(batch, Nx)` or ensembles `(batch, Ne, Nx)`.
        dtype: dtype to cast to, normally the analysis's `compute_dtype`. Default: unchanged.
    """
    forecast = tf.convert_to_tensor(forecast)
    if dtype is not None:
        forecast = tf.cast(forecast, dtype)
    if forecast.shape.rank == 2:
        return forecast[:, None, :]
    if forecast.shape.rank == 3:
        return forecast
    raise ValueError(
        "Forecasts must be states of shape (batch, Nx) or ensembles of shape (batch, Ne, Nx), "
        f"received shape {tuple(forecast.shape)}."
    )


def mean_increment(analysis, forecast, innovation):
    """Return the increment of the ensemble mean for a given innovation δ.

    The observation is built as y = H x̄^f + δ, so the analysis receives exactly the innovation δ.
    Layers with an `increment(forecast, weighted_innovation)` method are called through it with
    ζ = Hᵀ R⁻¹ δ, which avoids the float round-off of subtracting x̄^f from the analysis mean.

    Args:
        analysis: an `AnalysisLayer`.
        forecast: forecast ensemble `(batch, Ne, Nx)`.
        innovation: δ, shape `(batch, Ny)`.

    Returns:
        The mean increment x̄^a − x̄^f, shape `(batch, Nx)`.
    """
    operator = analysis.observation_operator
    state_dim = forecast.shape[-1]
    if hasattr(analysis, "increment"):
        precision = operator.precision(state_dim, innovation.dtype)
        zeta = operator.adjoint(innovation * precision, state_dim)
        return ops.mean(analysis.increment(forecast, zeta), axis=1)
    mean = ops.mean(forecast, axis=1)
    observation = operator(mean) + innovation
    return ops.mean(analysis(forecast, observation), axis=1) - mean


def sample_innovations(observation_operator, batch_size, num_samples, state_dim, seed, dtype):
    """Draw δ_j ~ N(0, R) of shape `(batch, num_samples, Ny)` with a stateless integer seed."""
    stateless_seed = tf.constant([int(seed), 0], dtype=tf.int64)
    return observation_operator.sample_noise((batch_size, num_samples), state_dim, stateless_seed, dtype)


def implied_gain_least_squares(
    analysis, forecast, num_samples, seed=0, innovation_scale=1.0, rows_per_call=None
):
    """Estimate the gain K(x) implied by an analysis by least squares over sampled innovations.

    For each forecast, draws δ_j = s e_j with e_j ~ N(0, R), j = 1..Np, computes the mean
    increments a_j = a(x, δ_j), and solves the centred least-squares problem

        min_K Σ_j ‖a_j − ā − K (δ_j − δ̄)‖²,  so  K = Ãᵀ D̃ (D̃ᵀ D̃)⁻¹,

    with D̃ and Ã the centred innovations `(Np, Ny)` and increments `(Np, Nx)`. Centring removes
    the zero-innovation bias a(x, 0) from the fit. The solve runs in float64.

    Args:
        analysis: an `AnalysisLayer`.
        forecast: states `(batch, Nx)` or forecast ensembles `(batch, Ne, Nx)`.
        num_samples: Np, innovations per state. Must exceed Ny; a few times Ny keeps the
            sampling error of K small.
        seed: integer seed of the innovations.
        innovation_scale: s, the standard deviation of the innovations in units of R^½.
            Default 1.0, the size of the observation errors; a small s probes the linear
            response and approaches the Jacobian estimate.
        rows_per_call: states × samples sent through the analysis per call (memory bound).
            Default 8192.

    Returns:
        K, a float64 NumPy array of shape `(batch, Nx, Ny)`.
    """
    forecast = as_forecast_ensemble(forecast, analysis.compute_dtype)
    batch_size, _, state_dim = forecast.shape
    operator = analysis.observation_operator
    num_obs = operator.observation_dim(state_dim)
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= num_obs:
        raise ValueError(
            f"`num_samples` must be an integer larger than Ny={num_obs} so that the least-squares "
            f"problem for K is determined, received num_samples={num_samples!r}. Use a few times "
            "Ny, for example 10 * Ny."
        )
    if not np.isfinite(innovation_scale) or innovation_scale <= 0:
        raise ValueError(
            "`innovation_scale` must be a positive finite number, received "
            f"innovation_scale={innovation_scale!r}."
        )
    innovations = innovation_scale * sample_innovations(
        operator, batch_size, num_samples, state_dim, seed, forecast.dtype
    )
    increments = _increments_for_samples(analysis, forecast, innovations, rows_per_call)
    return _centred_least_squares(innovations.numpy(), increments)


def _increments_for_samples(analysis, forecast, innovations, rows_per_call):
    """Return a(x_b, δ_bj) for every state b and sample j, float64 `(batch, Np, Nx)`."""
    batch_size, ensemble_size, state_dim = forecast.shape
    num_samples = innovations.shape[1]
    states_per_call = max(1, (rows_per_call or DEFAULT_ROWS_PER_CALL) // num_samples)

    @tf.function(reduce_retracing=True)
    def increments_of(forecast_chunk, innovation_chunk):
        repeated = tf.repeat(forecast_chunk, num_samples, axis=0)
        flat = tf.reshape(innovation_chunk, (-1, innovation_chunk.shape[-1]))
        return mean_increment(analysis, repeated, flat)

    chunks = []
    for start in range(0, batch_size, states_per_call):
        stop = start + states_per_call
        result = increments_of(forecast[start:stop], innovations[start:stop])
        chunks.append(np.asarray(result, dtype="float64").reshape(-1, num_samples, state_dim))
    return np.concatenate(chunks, axis=0)


def _centred_least_squares(innovations, increments):
    innovations = np.asarray(innovations, dtype="float64")
    centred_innovations = innovations - innovations.mean(axis=1, keepdims=True)
    centred_increments = increments - increments.mean(axis=1, keepdims=True)
    transposed = np.swapaxes(centred_innovations, -1, -2)
    gram = transposed @ centred_innovations
    # Normal equations (D̃ᵀ D̃) Kᵀ = D̃ᵀ Ã. D̃ᵀ D̃ is a Gaussian sample covariance with Np > Ny
    # samples, so it is well conditioned.
    gain_transposed = tf.linalg.solve(gram, transposed @ centred_increments).numpy()
    return np.swapaxes(gain_transposed, -1, -2)


def implied_gain_jacobian(analysis, forecast, states_per_call=DEFAULT_STATES_PER_CALL):
    """Return K(x) = ∂a(x, δ)/∂δ at δ = 0 by automatic differentiation.

    One `tf.GradientTape.batch_jacobian` call per chunk of states differentiates every output
    component (vectorised with `pfor`, no Python loop over components).

    Args:
        analysis: an `AnalysisLayer` differentiable with respect to its observation.
        forecast: states `(batch, Nx)` or forecast ensembles `(batch, Ne, Nx)`.
        states_per_call: states differentiated together (memory bound). Default 1024.

    Returns:
        K, a float64 NumPy array of shape `(batch, Nx, Ny)`.
    """
    forecast = as_forecast_ensemble(forecast, analysis.compute_dtype)
    num_obs = analysis.observation_operator.observation_dim(forecast.shape[-1])

    @tf.function(reduce_retracing=True)
    def jacobian(forecast):
        innovation = tf.zeros((tf.shape(forecast)[0], num_obs), dtype=forecast.dtype)
        with tf.GradientTape() as tape:
            tape.watch(innovation)
            increment = mean_increment(analysis, forecast, innovation)
        return tape.batch_jacobian(increment, innovation, unconnected_gradients=ZERO)

    return _apply_in_chunks(jacobian, forecast, states_per_call)


def implied_covariance_jacobian(analysis, forecast, states_per_call=DEFAULT_STATES_PER_CALL):
    """Return Pᵃ(x) = ∂a_θ(x, ζ)/∂ζ at ζ = 0, the covariance implied by a learned analysis.

    Differentiating with respect to the precision-weighted innovation ζ = Hᵀ R⁻¹ δ gives every
    column of Pᵃ for any H. When H observes only part of the state, ζ is zero off the observed
    variables in every real cycle. Only the observed columns (Pᵃ Hᵀ) are then constrained by
    training, and the other columns are the network's extrapolation.

    Args:
        analysis: a layer with `increment(forecast, weighted_innovation)`, such as
            `ResidualCNNAnalysis`.
        forecast: states `(batch, Nx)` or forecast ensembles `(batch, Ne, Nx)`.
        states_per_call: states differentiated together (memory bound). Default 1024.

    Returns:
        Pᵃ, a float64 NumPy array of shape `(batch, Nx, Nx)`, row index = increment component,
        column index = ζ component. It is not symmetrised.
    """
    check_has_increment(analysis)
    forecast = as_forecast_ensemble(forecast, analysis.compute_dtype)

    @tf.function(reduce_retracing=True)
    def jacobian(forecast):
        zeta = tf.zeros_like(forecast[:, 0, :])
        with tf.GradientTape() as tape:
            tape.watch(zeta)
            increment = ops.mean(analysis.increment(forecast, zeta), axis=1)
        return tape.batch_jacobian(increment, zeta, unconnected_gradients=ZERO)

    return _apply_in_chunks(jacobian, forecast, states_per_call)


def _apply_in_chunks(function, forecast, states_per_call):
    chunks = [
        np.asarray(function(forecast[start : start + states_per_call]), dtype="float64")
        for start in range(0, forecast.shape[0], states_per_call)
    ]
    return np.concatenate(chunks, axis=0)


def check_has_increment(analysis):
    """Raise `TypeError` unless `analysis` has an `increment(forecast, weighted_innovation)` method."""
    if not callable(getattr(analysis, "increment", None)):
        raise TypeError(
            "The Jacobian with respect to ζ = Hᵀ R⁻¹ δ needs an analysis with an "
            "`increment(forecast, weighted_innovation)` method, such as ResidualCNNAnalysis; "
            f"received {type(analysis).__name__}. Use `implied_gain_jacobian` and "
            "`covariance_from_gain` for other analyses."
        )


def covariance_from_gain(gain, observation_operator, state_dim):
    """Return the covariance implied by a gain: Pᵃ = K R (Hᵀ)⁺.

    K = Pᵃ Hᵀ R⁻¹ determines Pᵃ Hᵀ = K R. When H is invertible (for example H = I), this gives
    Pᵃ = K R H⁻ᵀ. When H selects Ny < Nx variables, (Hᵀ)⁺ = H and K R H = Pᵃ Hᵀ H is Pᵃ with
    the columns of the unobserved variables set to zero: only the observed columns of Pᵃ are
    identified by the gain.

    Args:
        gain: K, array of shape `(..., Nx, Ny)`.
        observation_operator: the `LinearObservation` (H and R) the gain was estimated with.
        state_dim: Nx.

    Returns:
        Float64 array of shape `(..., Nx, Nx)`.
    """
    gain = np.asarray(gain, dtype="float64")
    observation_matrix = observation_operator.matrix(state_dim)
    if gain.shape[-2:] != (state_dim, observation_matrix.shape[0]):
        raise ValueError(
            f"`gain` must have shape (..., Nx, Ny) = (..., {state_dim}, "
            f"{observation_matrix.shape[0]}) for this observation operator, received shape "
            f"{gain.shape}."
        )
    covariance_r = observation_operator.covariance(state_dim)
    return gain @ covariance_r @ np.linalg.pinv(observation_matrix.T)


def relative_difference(estimate, reference):
    """Return ‖estimate − reference‖_F / ‖reference‖_F over the last two axes."""
    estimate = np.asarray(estimate, dtype="float64")
    reference = np.asarray(reference, dtype="float64")
    difference = np.linalg.norm(estimate - reference, axis=(-2, -1))
    return difference / np.linalg.norm(reference, axis=(-2, -1))
