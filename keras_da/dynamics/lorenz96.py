"""The Lorenz 96 model as a Keras layer.

References:
    E. N. Lorenz, "Predictability: a problem partly solved", Proc. ECMWF Seminar on
    Predictability, 1996. E. N. Lorenz and K. A. Emanuel, "Optimal sites for supplementary
    weather observations", J. Atmos. Sci. 55 (1998), pp. 399–414.
"""

import math

import keras
from keras import ops

from keras_da.dynamics.base import DynamicsLayer
from keras_da.dynamics.integrators import integrate, rk4_step

MIN_STATE_DIM = 4


def lorenz96_tendency(x, forcing=8.0):
    """Return dx/dt of the Lorenz 96 model for states `x` of shape `(..., Nx)`.

    dx_n/dt = (x_{n+1} - x_{n-2}) x_{n-1} - x_n + F, with indices taken modulo Nx.
    """
    x_plus_1 = ops.roll(x, shift=-1, axis=-1)
    x_minus_1 = ops.roll(x, shift=1, axis=-1)
    x_minus_2 = ops.roll(x, shift=2, axis=-1)
    return (x_plus_1 - x_minus_2) * x_minus_1 - x + forcing


@keras.saving.register_keras_serializable(package="keras_da")
class Lorenz96(DynamicsLayer):
    """Lorenz 96 dynamics integrated over one observation interval with RK4.

    The layer works for any state dimension Nx >= 4, read from the last axis of its input, so one
    layer serves every grid size (this is what transfer across Nx relies on).

    Args:
        forcing: the constant forcing F. Default 8.0, the chaotic regime of the standard
            benchmark.
        time_step: time between two observations, in Lorenz 96 time units. Default 0.05.
        num_substeps: number of RK4 steps inside one observation interval, each of length
            `time_step / num_substeps`. Default 1, as in the standard benchmark.

    Call arguments:
        x: states of shape `(..., Nx)`.

    Returns:
        States one observation interval later, same shape and dtype as `x`.

    Example:
        >>> model = Lorenz96()
        >>> x = keras.ops.ones((2, 40)) * 8.0
        >>> model(x).shape
        TensorShape([2, 40])
    """

    def __init__(self, forcing=8.0, time_step=0.05, num_substeps=1, **kwargs):
        super().__init__(time_step=time_step, **kwargs)
        if not math.isfinite(forcing):
            raise ValueError(f"`forcing` must be a finite number, received forcing={forcing!r}.")
        if isinstance(num_substeps, bool) or not isinstance(num_substeps, int) or num_substeps < 1:
            raise ValueError(
                "`num_substeps` must be a positive integer (RK4 steps per observation interval), "
                f"received num_substeps={num_substeps!r}."
            )
        self.forcing = float(forcing)
        self.num_substeps = num_substeps

    def check_state_dim(self, state_dim):
        if state_dim is not None and state_dim < MIN_STATE_DIM:
            raise ValueError(
                f"Lorenz 96 needs at least {MIN_STATE_DIM} variables on its ring, received a state "
                f"with Nx={state_dim}. Use states of shape (..., Nx) with Nx >= {MIN_STATE_DIM}."
            )

    def tendency(self, x):
        return lorenz96_tendency(x, self.forcing)

    def call(self, x):
        self.check_state_dim(x.shape[-1])
        dt = self.time_step / self.num_substeps
        return integrate(lambda state: rk4_step(self.tendency, state, dt), x, self.num_substeps)

    def get_config(self):
        config = super().get_config()
        config.update({"forcing": self.forcing, "num_substeps": self.num_substeps})
        return config
