"""Analysis layers with a known implied gain, covariance and sensitivity, for the diagnostics tests."""

import numpy as np
from keras import ops

from keras_da.analysis.base import AnalysisLayer


class LinearCovarianceAnalysis(AnalysisLayer):
    """a(x, ζ) = c + P ζ for every member: bias c, implied covariance P, gain K = P Hᵀ R⁻¹."""

    def __init__(self, covariance, bias=None, **kwargs):
        super().__init__(**kwargs)
        self.covariance = np.asarray(covariance, dtype="float64")
        size = self.covariance.shape[0]
        self.bias = np.zeros(size) if bias is None else np.asarray(bias, dtype="float64")

    def increment(self, forecast, weighted_innovation):
        covariance = ops.convert_to_tensor(self.covariance, dtype=forecast.dtype)
        bias = ops.convert_to_tensor(self.bias, dtype=forecast.dtype)
        per_state = bias + ops.matmul(weighted_innovation, ops.transpose(covariance))
        return ops.zeros_like(forecast) + per_state[:, None, :]

    def call(self, forecast, observation):
        _, weighted = self.forecast_mean_and_innovation(forecast, observation)
        return forecast + self.increment(forecast, weighted)


def circulant_sensitivity_tensor(pattern):
    """Return G[n, m, l] = W[(m − n) mod Nx, (l − n) mod Nx] for a pattern W `(Nx, Nx)`."""
    size = pattern.shape[0]
    n = np.arange(size)[:, None, None]
    m = np.arange(size)[None, :, None]
    l = np.arange(size)[None, None, :]
    return pattern[(m - n) % size, (l - n) % size]


class StateDependentCovarianceAnalysis(AnalysisLayer):
    """a(x, ζ) = P(x) ζ with P(x)_{nm} = Σ_l G[n, m, l] x_l, so ∂Pᵃ_{nm}/∂x_l = G[n, m, l]."""

    def __init__(self, tensor, **kwargs):
        super().__init__(**kwargs)
        self.tensor = np.asarray(tensor, dtype="float64")

    def increment(self, forecast, weighted_innovation):
        tensor = ops.convert_to_tensor(self.tensor, dtype=forecast.dtype)
        covariance = ops.einsum("nml,bel->benm", tensor, forecast)
        return ops.einsum("benm,bm->ben", covariance, weighted_innovation)

    def call(self, forecast, observation):
        _, weighted = self.forecast_mean_and_innovation(forecast, observation)
        return forecast + self.increment(forecast, weighted)
