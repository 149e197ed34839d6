"""Twin experiments: a truth trajectory of the model and noisy observations of it."""

import numpy as np
import tensorflow as tf


def check_positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, received {name}={value!r}.")


def random_initial_states(num_states, state_dim, seed, scale=1.0, offset=0.0, dtype="float32"):
    """Draw `num_states` states of shape `(num_states, Nx)` as offset + scale · N(0, 1)."""
    rng = np.random.default_rng(seed)
    return (offset + scale * rng.standard_normal((num_states, state_dim))).astype(dtype)


def spin_up(dynamics, x0, num_cycles):
    """Integrate `x0` `(batch, Nx)` over `num_cycles` observation intervals and return the end state.

    Used to bring random states onto the attractor before a twin experiment.
    """
    check_positive_int("num_cycles", num_cycles, minimum=0)
    x = tf.convert_to_tensor(x0)

    @tf.function
    def run(x):
        return tf.while_loop(
            lambda i, x: i < num_cycles, lambda i, x: (i + 1, dynamics(x)), (0, x)
        )[1]

    return run(x) if num_cycles else x


def simulate(dynamics, observation_operator, x0, num_cycles, seed):
    """Run the truth and observe it: x_{k+1} = M(x_k), y_{k+1} = H(x_{k+1}) + e_{k+1}.

    Args:
        dynamics: a dynamics layer.
        observation_operator: a `LinearObservation`.
        x0: the truth at time 0, `(batch, Nx)`.
        num_cycles: number of observation times T after time 0.
        seed: integer seed of the observation noise.

    Returns:
        `(truth, observations)`, of shapes `(batch, T, Nx)` and `(batch, T, Ny)`; truth[:, k]
        is the state at time k + 1, the time of observations[:, k].
    """
    check_positive_int("num_cycles", num_cycles)
    x0 = tf.convert_to_tensor(x0)
    state_dim = x0.shape[-1]
    batch = x0.shape[0]
    base_seed = tf.constant([int(seed) % (2**31 - 1), 0], dtype=tf.int64)

    @tf.function
    def run(x0):
        def step(x, k):
            x = dynamics(x)
            noise_seed = base_seed + tf.stack([tf.constant(0, tf.int64), tf.cast(k, tf.int64)])
            noise = observation_operator.sample_noise((batch,), state_dim, noise_seed, x.dtype)
            return x, observation_operator(x) + noise

        def body(k, x, truth_array, obs_array):
            x, y = step(x, k)
            return k + 1, x, truth_array.write(k, x), obs_array.write(k, y)

        truth_array = tf.TensorArray(x0.dtype, size=num_cycles)
        obs_array = tf.TensorArray(x0.dtype, size=num_cycles)
        _, _, truth_array, obs_array = tf.while_loop(
            lambda k, *_: k < num_cycles, body, (0, x0, truth_array, obs_array)
        )
        perm = (1, 0, 2)
        return tf.transpose(truth_array.stack(), perm), tf.transpose(obs_array.stack(), perm)

    return run(x0)
