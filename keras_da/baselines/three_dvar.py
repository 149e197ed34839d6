"""3D-Var with a static background error covariance B, solved in closed form for linear H."""

import keras
import numpy as np
from keras import ops

from keras_da.analysis.base import AnalysisLayer
from keras_da.baselines.optimal_interpolation import (
    apply_static_gain,
    check_background_covariance,
    check_covariance_scale,
    static_gain,
)


@keras.saving.register_keras_serializable(package="keras_da")
class ThreeDVar(AnalysisLayer):
    """3D-Var analysis with a static background covariance B = σ_b² I or a given matrix B.

    For linear H the minimiser of the 3D-Var cost is the Kalman-type update with the static gain
    K = B Hᵀ (H B Hᵀ + R)⁻¹, applied to every member: E^a = E^f + K (y − H x̄^f).
    With B = σ_b² I and H a selection operator (H Hᵀ = I), K reduces to a per-observation scalar
    σ_b² / (σ_b² + r_i), which is what the layer applies without forming matrices; a full B is
    turned into a dense gain once, in float64, at the first call for each Nx and dtype.

    Args:
        observation_operator: a `LinearObservation`. Default H = I, R = I.
        background_std: σ_b, used when `background_covariance` is None. Default 0.4.
        background_covariance: optional symmetric positive-definite B of shape `(Nx, Nx)`, for
            example from `climatological_covariance`; fixes Nx.
        covariance_scale: α > 0; the layer uses α B when `background_covariance` is given, so a
            climatological B is tuned by sweeping α. Default 1.0.

    Call arguments:
        forecast: `(batch, Ne, Nx)`.
        observation: `(batch, Ny)`.

    Returns:
        The analysis ensemble, `(batch, Ne, Nx)`.
    """

    def __init__(
        self,
        observation_operator=None,
        background_std=0.4,
        background_covariance=None,
        covariance_scale=1.0,
        **kwargs,
    ):
        super().__init__(observation_operator=observation_operator, **kwargs)
        if not np.isfinite(background_std) or background_std <= 0:
            raise ValueError(
                "`background_std` (σ_b) must be a positive finite number, received "
                f"background_std={background_std!r}."
            )
        self.background_std = float(background_std)
        self.covariance_scale = check_covariance_scale(covariance_scale)
        self.background_covariance = None
        if background_covariance is not None:
            self.background_covariance = check_background_covariance(background_covariance)
        self._gain_cache = {}

    @property
    def supports_missing_observations(self):
        return self.background_covariance is None

    def gain(self, state_dim):
        """Return the static gain K as a float64 NumPy array of shape `(Nx, Ny)`."""
        if self.background_covariance is not None:
            if self.background_covariance.shape[0] != state_dim:
                raise ValueError(
                    f"`background_covariance` has shape {self.background_covariance.shape} but the "
                    f"state has Nx={state_dim} variables."
                )
            B = self.covariance_scale * self.background_covariance
        else:
            B = self.background_std**2 * np.eye(state_dim)
        return static_gain(B, self.observation_operator)

    def _dense_gain(self, state_dim, dtype):
        key = (state_dim, dtype)
        if key not in self._gain_cache:
            self._gain_cache[key] = self.gain(state_dim)
        return ops.convert_to_tensor(self._gain_cache[key], dtype=dtype)

    def call(self, forecast, observation):
        self.check_inputs(forecast, observation)
        state_dim = forecast.shape[-1]
        if self.background_covariance is not None:
            gain = self._dense_gain(state_dim, forecast.dtype)
            return apply_static_gain(forecast, observation, self.observation_operator, gain)
        mean = ops.mean(forecast, axis=1)
        # With B = σ_b² I and a selection H, observations are analysed independently, so a
        # missing one (zero innovation) leaves the others' increments exact.
        innovation = self.observation_operator.innovation(ops.cast(observation, forecast.dtype), mean)
        variances = self.observation_operator.variances(state_dim)
        scalar_gain = self.background_std**2 / (self.background_std**2 + variances)
        weights = ops.convert_to_tensor(scalar_gain, dtype=forecast.dtype)
        increment = self.observation_operator.adjoint(innovation * weights, state_dim)
        return forecast + ops.expand_dims(increment, axis=1)

    def get_config(self):
        config = super().get_config()
        config["background_std"] = self.background_std
        config["covariance_scale"] = self.covariance_scale
        config["background_covariance"] = (
            None if self.background_covariance is None else self.background_covariance.tolist()
        )
        return config
