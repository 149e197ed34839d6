"""3D-Var with a static background error covariance B, solved in closed form for linear H."""

import keras
import numpy as np
from keras import ops

from keras_da.analysis.base import AnalysisLayer


@keras.saving.register_keras_serializable(package="keras_da")
class ThreeDVar(AnalysisLayer):
    """3D-Var analysis with a static background covariance B = σ_b² I or a given matrix B.

    For linear H the minimiser of the 3D-Var cost is the Kalman-type update with the static gain
    K = B Hᵀ (H B Hᵀ + R)⁻¹, applied to every member: E^a = E^f + K (y − H x̄^f).
    With B = σ_b² I and H a selection operator (H Hᵀ = I), K reduces to a per-observation scalar
    σ_b² / (σ_b² + r_i), which is what the layer applies without forming matrices; a full B is
    turned into a dense gain once, in float64, when the layer is built.

    Args:
        observation_operator: a `LinearObservation`. Default H = I, R = I.
        background_std: σ_b, used when `background_covariance` is None. Default 0.4.
        background_covariance: optional symmetric positive-definite B of shape `(Nx, Nx)` (for
            example a scaled climatological covariance); fixes Nx.

    Call arguments:
        forecast: `(batch, Ne, Nx)`.
        observation: `(batch, Ny)`.

    Returns:
        The analysis ensemble, `(batch, Ne, Nx)`.
    """

    def __init__(
        self, observation_operator=None, background_std=0.4, background_covariance=None, **kwargs
    ):
        super().__init__(observation_operator=observation_operator, **kwargs)
        if not np.isfinite(background_std) or background_std <= 0:
            raise ValueError(
                "`background_std` (σ_b) must be a positive finite number, received "
                f"background_std={background_std!r}."
            )
        self.background_std = float(background_std)
        self.background_covariance = None
        if background_covariance is not None:
            B = np.asarray(background_covariance, dtype="float64")
            if B.ndim != 2 or B.shape[0] != B.shape[1]:
                raise ValueError(
                    "`background_covariance` must be a square matrix of shape (Nx, Nx), received "
                    f"shape {B.shape}."
                )
            if not np.all(np.isfinite(B)) or not np.allclose(B, B.T, atol=1e-10 * np.abs(B).max()):
                raise ValueError("`background_covariance` must be finite and symmetric.")
            eigenvalues = np.linalg.eigvalsh(B)
            if eigenvalues.min() <= 1e-12 * max(eigenvalues.max(), 1e-300):
                raise ValueError(
                    "`background_covariance` is singular or not positive definite (smallest "
                    f"eigenvalue {eigenvalues.min():.3g}). Add a small multiple of the identity or "
                    "use `background_std`."
                )
            self.background_covariance = B
        self._gain_cache = {}

    def gain(self, state_dim):
        """Return the static gain K as a float64 NumPy array of shape `(Nx, Ny)`."""
        H = self.observation_operator.matrix(state_dim)
        R = self.observation_operator.covariance(state_dim)
        if self.background_covariance is not None:
            if self.background_covariance.shape[0] != state_dim:
                raise ValueError(
                    f"`background_covariance` has shape {self.background_covariance.shape} but the "
                    f"state has Nx={state_dim} variables."
                )
            B = self.background_covariance
        else:
            B = self.background_std**2 * np.eye(state_dim)
        S = H @ B @ H.T + R
        return np.linalg.solve(S, H @ B).T  # S is symmetric, so (S⁻¹ H B)ᵀ = B Hᵀ S⁻¹

    def _dense_gain(self, state_dim, dtype):
        key = (state_dim, dtype)
        if key not in self._gain_cache:
            self._gain_cache[key] = self.gain(state_dim)
        return ops.convert_to_tensor(self._gain_cache[key], dtype=dtype)

    def call(self, forecast, observation):
        self.check_inputs(forecast, observation)
        state_dim = forecast.shape[-1]
        mean = ops.mean(forecast, axis=1)
        delta = self.observation_operator.innovation(observation, mean)
        if self.background_covariance is None:
            variances = self.observation_operator.variances(state_dim)
            scalar_gain = self.background_std**2 / (self.background_std**2 + variances)
            weights = ops.convert_to_tensor(scalar_gain, dtype=forecast.dtype)
            increment = self.observation_operator.adjoint(delta * weights, state_dim)
        else:
            gain = self._dense_gain(state_dim, forecast.dtype)
            increment = ops.matmul(delta, ops.transpose(gain))
        return forecast + ops.expand_dims(increment, axis=1)

    def get_config(self):
        config = super().get_config()
        config["background_std"] = self.background_std
        config["background_covariance"] = (
            None if self.background_covariance is None else self.background_covariance.tolist()
        )
        return config
