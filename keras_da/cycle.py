"""The forecast–analysis cycle as a Keras RNN cell."""

import keras
from keras import ops

from keras_da.analysis.base import AnalysisLayer
from keras_da.dynamics.base import DynamicsLayer


@keras.saving.register_keras_serializable(package="keras_da")
class AssimilationCell(keras.layers.Layer):
    """One data assimilation cycle: forecast with the dynamics, then analysis.

    The cell's state is the analysis ensemble E^a_{k-1}, flattened to `(batch, Ne * Nx)` because
    `keras.layers.RNN` keeps states as 2-D tensors; its input at step k is the observation y_k.
    One step computes E^f_k = M(E^a_{k-1}) member by member and E^a_k = analysis(E^f_k, y_k).

    Wrapped in `keras.layers.RNN(cell, return_sequences=True, return_state=True)` it filters a
    whole observation sequence `(batch, time, Ny)` from an `initial_state` (the flattened first
    analysis ensemble); with `stateful=True` it continues across calls.

    Args:
        dynamics: a `DynamicsLayer` (the model M).
        analysis: an `AnalysisLayer` (learned or classical).
        state_dim: Nx, the number of state variables.
        ensemble_size: Ne, the number of members propagated. Default 1.
        output: what the cell emits at each step: `"mean"` (the analysis mean, `(batch, Nx)`)
            or `"ensemble"` (the flattened analysis ensemble, `(batch, Ne * Nx)`).

    Call arguments:
        observation: `(batch, Ny)`.
        states: a list holding the flattened analysis ensemble `(batch, Ne * Nx)`.

    Returns:
        `(output, [new_state])` as `keras.layers.RNN` expects.
    """

    OUTPUTS = ("mean", "ensemble")

    def __init__(self, dynamics, analysis, state_dim, ensemble_size=1, output="mean", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(dynamics, DynamicsLayer):
            raise TypeError(
                f"`dynamics` must be a keras_da DynamicsLayer, received {type(dynamics).__name__}."
            )
        if not isinstance(analysis, AnalysisLayer):
            raise TypeError(
                f"`analysis` must be a keras_da AnalysisLayer, received {type(analysis).__name__}."
            )
        for name, value in (("state_dim", state_dim), ("ensemble_size", ensemble_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, received {name}={value!r}.")
        if output not in self.OUTPUTS:
            raise ValueError(f"`output` must be one of {self.OUTPUTS}, received output={output!r}.")
        dynamics.check_state_dim(state_dim)
        self.dynamics = dynamics
        self.analysis = analysis
        self.state_dim = state_dim
        self.ensemble_size = ensemble_size
        self.emit = output
        self.observation_dim = analysis.observation_operator.observation_dim(state_dim)
        self.state_size = ensemble_size * state_dim
        self.output_size = state_dim if output == "mean" else ensemble_size * state_dim

    def build(self, input_shape):
        ensemble_shape = (None, self.ensemble_size, self.state_dim)
        if not self.dynamics.built:
            self.dynamics.build(ensemble_shape)
        if not self.analysis.built:
            self.analysis.build(ensemble_shape, (None, self.observation_dim))
        super().build(input_shape)

    def unflatten(self, state):
        """Reshape a flat state `(batch, Ne * Nx)` to an ensemble `(batch, Ne, Nx)`."""
        return ops.reshape(state, (-1, self.ensemble_size, self.state_dim))

    def flatten(self, ensemble):
        """Reshape an ensemble `(batch, Ne, Nx)` to the flat state `(batch, Ne * Nx)`."""
        return ops.reshape(ensemble, (-1, self.ensemble_size * self.state_dim))

    def forecast_and_analyse(self, ensemble, observation):
        """Return (E^f, E^a) for an analysis ensemble `(batch, Ne, Nx)` and observation `(batch, Ny)`.

        With an observation operator that allows missing values (NaN), a run whose observations
        are all missing at this cycle skips the analysis (E^a = E^f), as a classical filter
        does when no data arrive; a learned analysis would otherwise add its zero-innovation
        increment a_θ(E^f, 0).
        """
        forecast = self.dynamics(ensemble)
        analysis = self.analysis(forecast, observation)
        if self.analysis.observation_operator.allow_missing:
            any_observed = ops.any(ops.logical_not(ops.isnan(observation)), axis=-1)
            analysis = ops.where(any_observed[:, None, None], analysis, forecast)
        return forecast, analysis

    def call(self, observation, states):
        ensemble = self.unflatten(states[0] if isinstance(states, (list, tuple)) else states)
        _, analysis = self.forecast_and_analyse(ensemble, observation)
        new_state = self.flatten(analysis)
        output = ops.mean(analysis, axis=1) if self.emit == "mean" else new_state
        return output, [new_state]

    def get_initial_state(self, batch_size=None):
        """Return a zero ensemble, the placeholder `keras.layers.RNN` creates its state from.

        A zero state is a fixed point of Lorenz 96 and never a useful first guess: pass
        `initial_state=[E0]`, the flattened first analysis ensemble `(batch, Ne * Nx)`, on the
        first call.
        """
        return [ops.zeros((batch_size, self.state_size), dtype=self.compute_dtype)]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "dynamics": keras.saving.serialize_keras_object(self.dynamics),
                "analysis": keras.saving.serialize_keras_object(self.analysis),
                "state_dim": self.state_dim,
                "ensemble_size": self.ensemble_size,
                "output": self.emit,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["dynamics"] = keras.saving.deserialize_keras_object(config["dynamics"])
        config["analysis"] = keras.saving.deserialize_keras_object(config["analysis"])
        return cls(**config)
