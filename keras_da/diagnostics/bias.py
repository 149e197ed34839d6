"""The bias of an analysis at zero innovation.

A Kalman-type update leaves the forecast unchanged when the observation agrees with it (δ = 0).
A learned analysis need not: its increment at zero innovation, a_θ(x, 0), is a bias that the
network adds whatever the observation. Its size along the filter's own forecasts x_k^f,

    b_k = ‖a_θ(x_k^f, 0)‖ / √Nx,

is in state units and compares directly with the analysis RMSE.
"""

import numpy as np
import tensorflow as tf

from keras_da.diagnostics.implied_covariance import as_forecast_ensemble, mean_increment

# Forecasts sent through the analysis in one call; it bounds memory, not the result.
DEFAULT_STATES_PER_CALL = 4096


def zero_innovation_increment(analysis, forecast, states_per_call=DEFAULT_STATES_PER_CALL):
    """Return the mean increment at zero innovation, a(x, 0), shape `(batch, Nx)`, float64.

    Args:
        analysis: an `AnalysisLayer`.
        forecast: states `(batch, Nx)` or forecast ensembles `(batch, Ne, Nx)`.
        states_per_call: forecasts per call of the analysis (memory bound). Default 4096.
    """
    forecast = as_forecast_ensemble(forecast, analysis.compute_dtype)
    num_obs = analysis.observation_operator.observation_dim(forecast.shape[-1])

    @tf.function(reduce_retracing=True)
    def increment_at_zero(chunk):
        zero = tf.zeros((tf.shape(chunk)[0], num_obs), dtype=chunk.dtype)
        return mean_increment(analysis, chunk, zero)

    chunks = [
        np.asarray(increment_at_zero(forecast[start : start + states_per_call]), dtype="float64")
        for start in range(0, forecast.shape[0], states_per_call)
    ]
    return np.concatenate(chunks, axis=0)


def zero_innovation_bias(analysis, forecast, states_per_call=DEFAULT_STATES_PER_CALL):
    """Return b = ‖a(x, 0)‖ / √Nx for each forecast, a float64 array of shape `(batch,)`."""
    increments = zero_innovation_increment(analysis, forecast, states_per_call)
    return np.sqrt(np.mean(np.square(increments), axis=-1))


def summarize_bias(bias):
    """Return the time mean, standard deviation, minimum and maximum of a bias series b_k."""
    bias = np.asarray(bias, dtype="float64").ravel()
    if bias.size == 0:
        raise ValueError("The bias series is empty: pass the bias of at least one forecast.")
    return {
        "mean": float(bias.mean()),
        "std": float(bias.std()),
        "min": float(bias.min()),
        "max": float(bias.max()),
        "num_states": int(bias.size),
    }
