"""Optimal interpolation: a static-gain analysis from a given background covariance B.

The module also estimates a climatological B from a free run of the model, the usual static
covariance of optimal interpolation and 3D-Var in twin experiments.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_da.analysis.base import AnalysisLayer
from keras_da.twin import check_positive_int, random_initial_states, spin_up as run_free


def check_background_covariance(covariance):
    """Return B as a float64 NumPy array; raise `ValueError` unless it is symmetric positive definite."""
    B = np.asarray(covariance, dtype="float64")
    if B.ndim != 2 or B.shape[0] != B.shape[1]:
        raise ValueError(
            "`background_covariance` must be a square matrix of shape (Nx, Nx), received shape "
            f"{B.shape}."
        )
    if not np.all(np.isfinite(B)):
        raise ValueError("`background_covariance` contains NaN or infinite entries; pass a finite B.")
    if not np.allclose(B, B.T, rtol=0.0, atol=1e-10 * np.abs(B).max()):
        asymmetry = float(np.abs(B - B.T).max())
        raise ValueError(
            "`background_covariance` must be symmetric, received a matrix with "
            f"max |B - Bᵀ| = {asymmetry:.3g}. Pass (B + Bᵀ) / 2."
        )
    eigenvalues = np.linalg.eigvalsh(B)
    if eigenvalues.min() <= 1e-12 * max(eigenvalues.max(), 1e-300):
        raise ValueError(
            "`background_covariance` is singular or not positive definite (smallest eigenvalue "
            f"{eigenvalues.min():.3g}, largest {eigenvalues.max():.3g}). Add a small multiple of "
            "the identity or estimate it from more samples."
        )
    return B


def check_covariance_scale(scale):
    """Return `scale` as a float; raise `ValueError` unless it is positive and finite."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating)):
        raise ValueError(f"`covariance_scale` must be a positive number, received {scale!r}.")
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(
            "`covariance_scale` multiplies B and must be a positive finite number, received "
            f"covariance_scale={scale!r}."
        )
    return float(scale)


def static_gain(background_covariance, observation_operator):
    """Return K = B Hᵀ (H B Hᵀ + R)⁻¹ as a float64 NumPy array of shape `(Nx, Ny)`."""
    state_dim = background_covariance.shape[0]
    H = observation_operator.matrix(state_dim)
    R = observation_operator.covariance(state_dim)
    innovation_covariance = H @ background_covariance @ H.T + R
    # The innovation covariance is symmetric, so (S⁻¹ H B)ᵀ = B Hᵀ S⁻¹.
    return np.linalg.solve(innovation_covariance, H @ background_covariance).T


def apply_static_gain(forecast, observation, observation_operator, gain):
    """Add K (y − H x̄^f) to every member of `forecast` `(batch, Ne, Nx)`; `gain` is `(Nx, Ny)`."""
    mean = ops.mean(forecast, axis=1)
    innovation = ops.cast(observation, forecast.dtype) - observation_operator(mean)
    gain = ops.convert_to_tensor(gain, dtype=forecast.dtype)
    increment = ops.matmul(innovation, ops.transpose(gain))
    return forecast + ops.expand_dims(increment, axis=1)


def climatological_covariance(
    dynamics, state_dim, num_samples=2000, spin_up=1000, seed=0, initial_mean=8.0, initial_std=1.0
):
    """Estimate the climatological covariance of `dynamics` from a free run.

    `num_samples` independent states N(initial_mean, initial_std²) are integrated for `spin_up`
    observation intervals, long enough to forget their start and reach the attractor, and the
    sample covariance of the end states is returned. The default start suits Lorenz 96 with
    F = 8, whose climatological mean is close to 2.3 and whose variance is close to 13.

    Args:
        dynamics: a `DynamicsLayer`.
        state_dim: Nx.
        num_samples: number of independent free runs, one sample each. Default 2000.
        spin_up: observation intervals each run is integrated for. Default 1000.
        seed: seed of the initial states. Default 0.
        initial_mean: mean of the initial states. Default 8.0.
        initial_std: standard deviation of the initial states. Default 1.0.

    Returns:
        B, a float64 NumPy array of shape `(Nx, Nx)`.
    """
    check_positive_int("num_samples", num_samples, minimum=2)
    check_positive_int("state_dim", state_dim)
    x0 = random_initial_states(
        num_samples, state_dim, seed=seed, scale=initial_std, offset=initial_mean
    )
    states = np.asarray(run_free(dynamics, x0, spin_up), dtype="float64")
    if not np.all(np.isfinite(states)):
        raise ValueError(
            f"The free run diverged: {int(np.sum(~np.isfinite(states)))} non-finite values after "
            f"{spin_up} cycles. Check the dynamics' time step and the initial states."
        )
    return np.cov(states, rowvar=False)


@keras.saving.register_keras_serializable(package="keras_da")
class OptimalInterpolation(AnalysisLayer):
    """Optimal interpolation (OI): the analysis with a static gain from a given B.

    K = (α B) Hᵀ (H (α B) Hᵀ + R)⁻¹ is computed once in float64 for the scaled covariance α B,
    and every member receives the increment K (y − H x̄^f), so an ensemble keeps its spread. For
    a linear H the OI analysis is the minimiser of the 3D-Var cost with the same B; use
    `ThreeDVar` for the diagonal B = σ_b² I.

    Args:
        background_covariance: symmetric positive-definite B of shape `(Nx, Nx)`, for example
            from `climatological_covariance`; fixes Nx.
        observation_operator: a `LinearObservation`. Default H = I, R = I.
        covariance_scale: α > 0, the factor on B. A climatological B is typically scaled well
            below 1, because the forecast error is much smaller than the climate variability.
            Default 1.0.

    Call arguments:
        forecast: forecast ensemble, `(batch, Ne, Nx)`.
        observation: `(batch, Ny)`.

    Returns:
        The analysis ensemble, `(batch, Ne, Nx)`.
    """

    def __init__(
        self, background_covariance, observation_operator=None, covariance_scale=1.0, **kwargs
    ):
        super().__init__(observation_operator=observation_operator, **kwargs)
        self.background_covariance = check_background_covariance(background_covariance)
        self.covariance_scale = check_covariance_scale(covariance_scale)
        self.state_dim = self.background_covariance.shape[0]
        self.observation_operator.observed_indices(self.state_dim)
        self.gain = static_gain(
            self.covariance_scale * self.background_covariance, self.observation_operator
        )

    def call(self, forecast, observation):
        self.check_inputs(forecast, observation)
        if forecast.shape[-1] != self.state_dim:
            raise ValueError(
                f"`background_covariance` has shape {self.background_covariance.shape} but the "
                f"forecast has Nx={forecast.shape[-1]} variables. Estimate B on the same grid."
            )
        return apply_static_gain(forecast, observation, self.observation_operator, self.gain)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "background_covariance": self.background_covariance.tolist(),
                "covariance_scale": self.covariance_scale,
            }
        )
        return config
