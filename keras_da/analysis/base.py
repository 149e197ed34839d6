"""Base class of every analysis, learned or classical."""

import keras
from keras import ops

from keras_da.observations import LinearObservation


class AnalysisLayer(keras.layers.Layer):
    """An analysis step: forecast ensemble and observation in, analysis ensemble out.

    Every analysis in keras_da, the learned a_θ and the classical filters alike, has this call
    signature, so one `AssimilationCell` and one evaluation code path run them all.

    Args:
        observation_operator: a `LinearObservation` (H and R). Default: H = I, R = I.

    Call arguments:
        forecast: forecast ensemble E^f of shape `(batch, Ne, Nx)`.
        observation: observation vector y of shape `(batch, Ny)`.

    Returns:
        The analysis ensemble E^a, shape `(batch, Ne, Nx)`.
    """

    def __init__(self, observation_operator=None, **kwargs):
        super().__init__(**kwargs)
        if observation_operator is None:
            observation_operator = LinearObservation(variance=1.0)
        if not isinstance(observation_operator, LinearObservation):
            raise TypeError(
                "`observation_operator` must be a keras_da.observations.LinearObservation, "
                f"received {type(observation_operator).__name__}."
            )
        self.observation_operator = observation_operator

    # Subclasses with a minimum ensemble size override this.
    min_ensemble_size = 1
    # Whether the analysis handles missing observations (NaN with `allow_missing=True`).
    supports_missing_observations = False

    def check_inputs(self, forecast, observation):
        """Raise `ValueError` for an ensemble of the wrong rank or an observation of the wrong size."""
        if len(forecast.shape) != 3:
            raise ValueError(
                "The forecast ensemble must have rank 3, shape (batch, Ne, Nx); received shape "
                f"{tuple(forecast.shape)}. Add a member axis with E[:, None, :] for a single state."
            )
        ensemble_size = forecast.shape[1]
        if ensemble_size is not None and ensemble_size < self.min_ensemble_size:
            raise ValueError(
                f"{type(self).__name__} needs at least {self.min_ensemble_size} ensemble members, "
                f"received Ne={ensemble_size}."
            )
        if len(observation.shape) != 2:
            raise ValueError(
                "Observations must have shape (batch, Ny); received shape "
                f"{tuple(observation.shape)}."
            )
        self.observation_operator.check_observation(observation, forecast.shape[-1])
        if self.observation_operator.allow_missing and not self.supports_missing_observations:
            raise NotImplementedError(
                f"{type(self).__name__} does not handle missing observations; use an operator "
                "with allow_missing=False or an analysis that supports them (the learned "
                "analyses, 3D-Var with B = σ_b² I, the free run)."
            )

    def forecast_mean_and_innovation(self, forecast, observation):
        """Return the forecast mean x̄^f `(batch, Nx)` and Hᵀ R⁻¹ (y − H x̄^f) `(batch, Nx)`."""
        mean = ops.mean(forecast, axis=1)
        weighted = self.observation_operator.precision_weighted_innovation(observation, mean)
        return mean, weighted

    def build(self, forecast_shape, observation_shape=None):
        if not self.observation_operator.built:
            self.observation_operator.build(forecast_shape[1:2] + forecast_shape[-1:])
        super().build(forecast_shape)

    def compute_output_shape(self, forecast_shape, observation_shape=None):
        return forecast_shape

    def get_config(self):
        config = super().get_config()
        config["observation_operator"] = keras.saving.serialize_keras_object(
            self.observation_operator
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["observation_operator"] = keras.saving.deserialize_keras_object(
            config["observation_operator"]
        )
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_da")
class FreeRun(AnalysisLayer):
    """The trivial analysis E^a = E^f: the model runs free, ignoring observations.

    It is the reference row of every comparison: a filter must beat the free run.
    """

    supports_missing_observations = True

    def call(self, forecast, observation):
        self.check_inputs(forecast, observation)
        return forecast
