"""Time integrators shared by the dynamics layers.

The integrators are plain functions over tensors so that the classical filters, the learned
filters and the tests call exactly the same arithmetic.
"""

from keras import ops


def rk4_step(tendency, x, dt):
    """Advance `x` by one classical fourth-order Runge–Kutta step.

    Args:
        tendency: callable mapping a state tensor to its time derivative, with the same shape.
        x: state tensor of any shape accepted by `tendency`.
        dt: time step, in the model's time units.

    Returns:
        The state after one step, with the shape and dtype of `x`.
    """
    k1 = tendency(x)
    k2 = tendency(x + (0.5 * dt) * k1)
    k3 = tendency(x + (0.5 * dt) * k2)
    k4 = tendency(x + dt * k3)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def integrate(step, x, num_steps):
    """Apply `step` to `x` `num_steps` times (a Python loop, unrolled when traced).

    `num_steps` is the number of integrator steps inside one observation interval, which is a
    small constant (1 for the standard Lorenz 96 benchmark), so unrolling keeps the traced graph
    short while letting the optimiser fuse the steps.
    """
    for _ in range(num_steps):
        x = step(x)
    return x
