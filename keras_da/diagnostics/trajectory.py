"""Forecasts and analyses of a filter along a twin experiment, kept for the diagnostics.

`keras_da.evaluation.run_filter` returns only the analysis means. The diagnostics also need the
filter's own forecasts x_k^f, where a_θ is evaluated, and the analysis ensembles, whose sample
covariance is the EnKF's Pᵃ. Running two filters on the same `TwinExperiment` observations
makes their Pᵃ comparable at every cycle.
"""

import numpy as np
import tensorflow as tf


def filter_trajectory(dynamics, analysis, observations, initial_ensemble):
    """Cycle a filter over an observation sequence and return its forecasts and analyses.

    Step k computes E^f_k = M(E^a_{k−1}) and E^a_k = analysis(E^f_k, y_k), as
    `AssimilationCell` does, inside one `tf.while_loop`.

    Args:
        dynamics: the model M, a `DynamicsLayer`.
        analysis: an `AnalysisLayer`.
        observations: y_1..y_T, array of shape `(batch, T, Ny)`.
        initial_ensemble: E^a_0, array of shape `(batch, Ne, Nx)`.

    Returns:
        `(forecasts, analyses)`, NumPy arrays of shape `(batch, T, Ne, Nx)` in the dtype of
        `initial_ensemble`.
    """
    initial_ensemble = tf.convert_to_tensor(initial_ensemble)
    if initial_ensemble.shape.rank != 3:
        raise ValueError(
            "`initial_ensemble` must have shape (batch, Ne, Nx), received shape "
            f"{tuple(initial_ensemble.shape)}."
        )
    observations = tf.convert_to_tensor(observations, dtype=initial_ensemble.dtype)
    if observations.shape.rank != 3 or observations.shape[0] != initial_ensemble.shape[0]:
        raise ValueError(
            "`observations` must have shape (batch, T, Ny) with the batch size of the initial "
            f"ensemble ({initial_ensemble.shape[0]}), received shape {tuple(observations.shape)}."
        )
    forecasts, analyses = _run_cycles(dynamics, analysis, observations, initial_ensemble)
    return forecasts.numpy(), analyses.numpy()


def _run_cycles(dynamics, analysis, observations, initial_ensemble):
    num_cycles = observations.shape[1]
    time_major = tf.transpose(observations, (1, 0, 2))

    @tf.function
    def run(time_major, ensemble):
        def body(k, ensemble, forecast_array, analysis_array):
            forecast = dynamics(ensemble)
            updated = analysis(forecast, time_major[k])
            return k + 1, updated, forecast_array.write(k, forecast), analysis_array.write(k, updated)

        forecast_array = tf.TensorArray(ensemble.dtype, size=num_cycles)
        analysis_array = tf.TensorArray(ensemble.dtype, size=num_cycles)
        _, _, forecast_array, analysis_array = tf.while_loop(
            lambda k, *_: k < num_cycles, body, (0, ensemble, forecast_array, analysis_array)
        )
        permutation = (1, 0, 2, 3)
        return (
            tf.transpose(forecast_array.stack(), permutation),
            tf.transpose(analysis_array.stack(), permutation),
        )

    return run(time_major, initial_ensemble)


def ensemble_covariance(ensembles):
    """Return the sample covariance A Aᵀ / (Ne − 1) of ensembles `(..., Ne, Nx)`, `(..., Nx, Nx)`.

    Computed in float64 with the unbiased normalisation; it is the Pᵃ an EnKF reports when
    given its analysis ensembles.
    """
    ensembles = np.asarray(ensembles, dtype="float64")
    ensemble_size = ensembles.shape[-2]
    if ensemble_size < 2:
        raise ValueError(
            f"A sample covariance needs at least 2 members, received an ensemble of shape "
            f"{ensembles.shape} (Ne={ensemble_size})."
        )
    anomalies = ensembles - ensembles.mean(axis=-2, keepdims=True)
    return np.swapaxes(anomalies, -1, -2) @ anomalies / (ensemble_size - 1)


def analysis_rmse(analyses, truth):
    """Return the spatial RMSE of the analysis means against the truth, shape `(batch, T)`.

    Args:
        analyses: analysis ensembles `(batch, T, Ne, Nx)`.
        truth: true states `(batch, T, Nx)`.
    """
    means = np.asarray(analyses, dtype="float64").mean(axis=-2)
    return np.sqrt(np.mean(np.square(means - np.asarray(truth, dtype="float64")), axis=-1))

