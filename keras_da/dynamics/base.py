"""Base class of the dynamics layers: states `(..., Nx)` to states one observation later."""

import math

import keras


class DynamicsLayer(keras.layers.Layer):
    """A model M that maps states of shape `(..., Nx)` to states one observation interval later.

    Subclasses implement `call(x)` and may override `check_state_dim(Nx)` to reject grid sizes
    the model does not support. The layer has no trainable weights unless a subclass adds them
    (a learned emulator is just another dynamics layer).

    Args:
        time_step: time between two observations, in the model's time units.
    """

    def __init__(self, time_step, **kwargs):
        # Weightless models compute in the dtype of their input (float32 or float64) instead of
        # casting it to the layer's dtype.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if isinstance(time_step, bool) or not math.isfinite(time_step) or time_step <= 0:
            raise ValueError(
                "`time_step` must be a positive finite number (time between observations), "
                f"received time_step={time_step!r}."
            )
        self.time_step = float(time_step)

    def check_state_dim(self, state_dim):
        """Raise `ValueError` if the model cannot run on `state_dim` variables."""

    def build(self, input_shape):
        self.check_state_dim(input_shape[-1])
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"time_step": self.time_step})
        return config
