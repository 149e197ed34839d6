"""Online training of a learned analysis through the forecast–analysis cycle (TBPTT)."""

import logging

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_da.cycle import AssimilationCell
from keras_da.training import distribute
from keras_da.training.losses import LOSSES
from keras_da.twin import check_positive_int, random_initial_states, spin_up

logger = logging.getLogger(__name__)

# Names of `mixed_precision` and the Keras dtype policy each gives the analysis network.
MIXED_PRECISION_POLICIES = {"none": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@keras.saving.register_keras_serializable(package="keras_da")
class LearnedFilter(keras.Model):
    """A data assimilation filter whose analysis is trained through the cycle itself.

    The model keeps a pool of `pool_size` (Nr) truth trajectories on the attractor together with
    their current analysis ensembles, as non-trainable weights. Each training step

    1. takes the next `batch_size` (B) trajectories of the pool (in a fixed cyclic order),
    2. generates the next `window_length` (L) cycles of truth and observations online,
    3. unrolls the `AssimilationCell` over the window with gradients and minimises the mean
       squared error between the analysis mean and the truth over the window,
    4. writes the final truth and analysis ensemble back to the pool without gradient, so the
       next visit continues the same trajectories (truncated backpropagation through time).

    Observation noise is drawn with `portable_standard_normal` keyed on (`seed`, window
    counter). The counter is a model weight, so the same seed gives the same run, and a run
    restored from a checkpoint continues the same noise sequence, with or without XLA.

    Built and compiled inside a `tf.distribute.Strategy` scope, the model trains data-parallel
    with `fit`. Each of the R replicas takes its own B / R trajectories of the step's batch, and
    the applied update equals the single-device update on the same B trajectories (see
    `keras_da.training.distribute`). Compiled with `jit_compile=True`, the train step runs with
    XLA and the window is unrolled (see `unroll_window`).

    Calling the model filters given observations: `model((observations, initial_ensemble))`
    returns the analysis means `(batch, time, Nx)`.

    Args:
        dynamics: the model M, a `DynamicsLayer`.
        analysis: the trainable analysis, an `AnalysisLayer` (for example `ResidualCNNAnalysis`).
        state_dim: Nx.
        ensemble_size: Ne, members propagated per trajectory. Default 1.
        pool_size: Nr, number of trajectories in the pool. Must be a multiple of `batch_size`.
        batch_size: B, trajectories per training step.
        window_length: L, cycles unrolled (and differentiated through) per step.
        initial_spread: standard deviation of the perturbation of the truth that forms the first
            analysis ensemble of each trajectory, in state units. Default 1.0.
        spin_up_cycles: cycles integrated from random states before the pool is used.
        seed: integer seed of the pool and of the observation noise.
        loss: `"supervised"` (mean squared error of the analysis mean against the truth) or
            `"observation"` (misfit of the next observation to the one-cycle forecast of the
            analysis mean, see `keras_da.training.losses.observation_loss`). The `rmse` metric
            always compares with the truth, for monitoring. Default `"supervised"`.
        mixed_precision: compute dtype of the analysis network's layers: `"none"` (float32),
            `"bfloat16"` or `"float16"`. The state, the dynamics, the innovation, the residual
            update E^f + a_θ and the loss stay float32, and the network's weights are float32
            too; only the hidden layers of the analysis compute in the lower precision, with
            casts at their boundary (see `set_network_dtype_policy`). With `"float16"`,
            `compile` wraps the optimizer in a `keras.optimizers.LossScaleOptimizer` so small
            gradients do not underflow. Default `"none"`.
    """

    def __init__(
        self,
        dynamics,
        analysis,
        state_dim,
        ensemble_size=1,
        pool_size=4096,
        batch_size=64,
        window_length=10,
        initial_spread=1.0,
        spin_up_cycles=1000,
        seed=0,
        mixed_precision="none",
        loss="supervised",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if loss not in LOSSES:
            raise ValueError(
                f"`loss` must be one of {tuple(LOSSES)}, received loss={loss!r}. Use "
                '"observation" to train without the truth.'
            )
        self.loss_name = loss
        check_positive_int("pool_size", pool_size)
        check_positive_int("batch_size", batch_size)
        check_positive_int("window_length", window_length)
        check_positive_int("spin_up_cycles", spin_up_cycles, minimum=0)
        if pool_size % batch_size:
            raise ValueError(
                f"`pool_size` ({pool_size}) must be a multiple of `batch_size` ({batch_size}) so "
                "that every trajectory is visited equally often."
            )
        if not np.isfinite(initial_spread) or initial_spread < 0:
            raise ValueError(
                "`initial_spread` must be a non-negative finite number, received "
                f"initial_spread={initial_spread!r}."
            )
        if mixed_precision not in MIXED_PRECISION_POLICIES:
            raise ValueError(
                f"`mixed_precision` must be one of {tuple(MIXED_PRECISION_POLICIES)}, received "
                f"mixed_precision={mixed_precision!r}."
            )
        set_network_dtype_policy(analysis, MIXED_PRECISION_POLICIES[mixed_precision])
        self.mixed_precision = mixed_precision
        self.replica_jit_compile = False
        self.cell = AssimilationCell(dynamics, analysis, state_dim, ensemble_size)
        self.rnn = keras.layers.RNN(self.cell, return_sequences=True, return_state=True)
        self.state_dim = state_dim
        self.ensemble_size = ensemble_size
        self.pool_size = pool_size
        self.batch_size = batch_size
        self.window_length = window_length
        self.initial_spread = float(initial_spread)
        self.spin_up_cycles = spin_up_cycles
        self.seed = int(seed)

        # Aggregation "none": under a strategy, a write in replica context changes only that
        # replica's copy. Every replica writes the same values (`_store_window_end`, the counter
        # increment), so the copies stay identical without all-reducing the pool.
        self.pool_truth = self.add_weight(
            shape=(pool_size, state_dim),
            initializer="zeros",
            trainable=False,
            aggregation="none",
            name="pool_truth",
        )
        self.pool_ensemble = self.add_weight(
            shape=(pool_size, ensemble_size * state_dim),
            initializer="zeros",
            trainable=False,
            aggregation="none",
            name="pool_ensemble",
        )
        self.window_counter = self.add_weight(
            shape=(),
            initializer="zeros",
            dtype="int64",
            trainable=False,
            aggregation="none",
            name="window_counter",
        )
        self.pool_ready = self.add_weight(
            shape=(), initializer="zeros", dtype="bool", trainable=False, name="pool_ready"
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.rmse_tracker = keras.metrics.Mean(name="rmse")
        self.reset_tracker = keras.metrics.Sum(name="pool_resets")
        self.rnn.build((None, None, self.cell.observation_dim))
        # Every weight exists now, so checkpoints can be restored before the first step.
        self.built = True

    # ------------------------------------------------------------------ properties
    @property
    def dynamics(self):
        return self.cell.dynamics

    @property
    def analysis(self):
        return self.cell.analysis

    @property
    def observation_operator(self):
        return self.cell.analysis.observation_operator

    @property
    def metrics(self):
        return [self.loss_tracker, self.rmse_tracker, self.reset_tracker]

    # ------------------------------------------------------------------ pool
    def initialize_pool(self):
        """Spin up `pool_size` truths onto the attractor and perturb them into first ensembles."""
        logger.info(
            "Spinning up %d trajectories for %d cycles.", self.pool_size, self.spin_up_cycles
        )
        x0 = random_initial_states(
            self.pool_size, self.state_dim, seed=self.seed, offset=8.0, scale=1.0
        )
        truth = spin_up(self.dynamics, x0, self.spin_up_cycles)
        rng = np.random.default_rng(self.seed + 1)
        perturbation = self.initial_spread * rng.standard_normal(
            (self.pool_size, self.ensemble_size, self.state_dim)
        ).astype("float32")
        ensemble = np.asarray(truth)[:, None, :] + perturbation
        self.pool_truth.assign(truth)
        self.pool_ensemble.assign(ensemble.reshape(self.pool_size, -1))
        self.window_counter.assign(0)
        self.pool_ready.assign(True)

    def _window_start(self):
        """Return the pool row of the first trajectory of the current step's global batch."""
        windows_per_pass = self.pool_size // self.batch_size
        return (self.window_counter % windows_per_pass) * self.batch_size

    def _replica_batch(self):
        """Return (offset of this replica's slice in the batch, its size, number of replicas)."""
        replica_id, num_replicas = distribute.replica_position()
        local_batch = distribute.check_replica_batch(self.batch_size, num_replicas)
        return replica_id * local_batch, local_batch, num_replicas

    def _replica_rows(self, tensor, batch_offset, local_batch):
        """Return this replica's rows of a tensor drawn for the whole batch of B trajectories."""
        if local_batch is None or local_batch == self.batch_size:
            return tensor
        return tf.gather(tensor, batch_offset + tf.range(local_batch, dtype=tf.int64))

    def generate_window(self, truth, batch_offset=0):
        """Return the next L truths `(b, L, Nx)` and observations `(b, L, Ny)` after `truth`.

        `truth` has shape `(b, Nx)`.

        The noise is drawn for the whole batch of B trajectories and rows `batch_offset` to
        `batch_offset + b` are kept, so a replica holding b = B / R trajectories observes them
        with the same errors as a single device holding all B.
        """
        seed = tf.stack([tf.constant(self.seed, tf.int64), self.window_counter.value])
        shape = (self.batch_size, self.window_length, self.cell.observation_dim)
        std = np.sqrt(self.observation_operator.variances(self.state_dim)).astype("float32")
        noise = ops.cast(std * portable_standard_normal(shape, seed), truth.dtype)
        noise = self._replica_rows(noise, batch_offset, truth.shape[0])
        truths = []
        for _ in range(self.window_length):
            truth = self.dynamics(truth)
            truths.append(truth)
        truths = ops.stack(truths, axis=1)
        return truths, self.observation_operator(truths) + noise

    def _reset_diverged(self, truth, ensemble, batch_offset=0):
        """Replace non-finite analysis ensembles by a fresh perturbation of their truth."""
        members = ops.reshape(ensemble, (-1, self.ensemble_size, self.state_dim))
        finite = ops.all(ops.isfinite(members), axis=(1, 2))
        seed = tf.stack([tf.constant(self.seed + 7, tf.int64), self.window_counter.value])
        shape = (self.batch_size, self.ensemble_size, self.state_dim)
        noise = ops.cast(portable_standard_normal(shape, seed), members.dtype)
        noise = self._replica_rows(noise, batch_offset, members.shape[0])
        fresh = truth[:, None, :] + self.initial_spread * noise
        members = ops.where(finite[:, None, None], members, fresh)
        num_reset = ops.sum(ops.cast(ops.logical_not(finite), "float32"))
        return ops.reshape(members, (-1, self.ensemble_size * self.state_dim)), num_reset

    def _store_window_end(self, window_start, truth, ensemble):
        """Write the window's final truth and analysis ensemble of the global batch to the pool.

        Every replica gathers the rows of all replicas and writes the same B rows to its own
        copy of the pool (the variables keep aggregation "none", so a write in replica context
        stays local), so the copies never diverge.
        """
        truth = distribute.gather_replicas(truth)
        ensemble = distribute.gather_replicas(ensemble)
        rows = (window_start + tf.range(self.batch_size, dtype=tf.int64))[:, None]
        self.pool_truth.assign(tf.tensor_scatter_nd_update(self.pool_truth.value, rows, truth))
        self.pool_ensemble.assign(
            tf.tensor_scatter_nd_update(self.pool_ensemble.value, rows, ensemble)
        )

    # ------------------------------------------------------------------ Keras API
    def call(self, inputs, training=False):
        observations, initial_ensemble = inputs
        initial_state = ops.reshape(initial_ensemble, (-1, self.ensemble_size * self.state_dim))
        means, _ = self.rnn(observations, initial_state=[initial_state], training=training)
        return means

    def unroll_window(self, observations, initial_state):
        """Run the cycle over one window; return the analysis means `(b, L, Nx)` and final state.

        In graph mode the window runs as the `keras.layers.RNN` loop. Compiled with XLA it is
        unrolled into L copies of the cell instead. With the RNN's while loop inside, the XLA
        train step of the "lorenz96" preset ran about 17 times slower than graph mode on a
        2-core CPU (TensorFlow 2.21). Unrolled, it ran faster than graph mode
        (docs/deployment.md has the numbers).
        """
        if not (self.jit_compile or self.replica_jit_compile):
            return self.rnn(observations, initial_state=[initial_state], training=True)
        state, means = initial_state, []
        for k in range(self.window_length):
            mean, (state,) = self.cell(observations[:, k], [state], training=True)
            means.append(mean)
        return ops.stack(means, axis=1), state

    def window_errors(self, analysis_means, truths):
        """Return the per-trajectory mean squared error `(batch,)` and the mean spatial RMSE.

        Both average over the window and the grid, comparing analysis means `(batch, L, Nx)`
        with truths of the same shape.
        """
        squared = ops.mean(ops.square(analysis_means - truths), axis=-1)
        return ops.mean(squared, axis=-1), ops.mean(ops.sqrt(squared))

    def window_loss(self, analysis_means, truths):
        """Return (mean squared error, mean spatial RMSE) of analysis means against truths."""
        per_trajectory, rmse = self.window_errors(analysis_means, truths)
        return ops.mean(per_trajectory), rmse

    def window_gradients(self, observations, initial_state, truths):
        """Unroll one window and return its gradients, final state and errors.

        Returns:
            `(gradients, final_state, per_trajectory, rmse)`: the gradients of the loss with
            respect to `trainable_variables`, the final flat analysis ensemble `(b, Ne * Nx)`,
            the per-trajectory mean squared error `(b,)` and the mean spatial RMSE.
        """
        with tf.GradientTape() as tape:
            means, final_state = self.unroll_window(observations, initial_state)
            per_trajectory, rmse = self.window_errors(means, truths)
            if self.loss_name != "supervised":
                # The objective reads only observations; the truth feeds the metrics alone.
                per_trajectory = LOSSES[self.loss_name](
                    means, truths, observations, self.dynamics, self.observation_operator
                )
            # Dividing this replica's sum by the global batch size B makes the sum of the
            # replicas' gradients, which the optimizer applies, the gradient of the batch mean.
            loss = ops.sum(per_trajectory) / self.batch_size
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        return gradients, final_state, per_trajectory, rmse

    def train_step(self, data):
        del data  # samples are generated online
        batch_offset, local_batch, _ = self._replica_batch()
        window_start = self._window_start()
        indices = window_start + batch_offset + tf.range(local_batch, dtype=tf.int64)
        truth0 = tf.gather(self.pool_truth, indices)
        ensemble0 = tf.gather(self.pool_ensemble, indices)

        # Generate: truth and observations of the next window, without gradient.
        truths, observations = self.generate_window(truth0, batch_offset)

        # Unroll the cycle and differentiate through the whole window.
        window_gradients = self.window_gradients
        if self.replica_jit_compile:
            window_gradients = tf.function(window_gradients, jit_compile=True, autograph=False)
        gradients, final_state, per_trajectory, rmse = window_gradients(
            observations, ensemble0, truths
        )
        self.optimizer.apply(gradients, self.trainable_variables)

        # Truncate: store the window's end without gradient as the next window's start.
        final_ensemble, num_reset = self._reset_diverged(
            truths[:, -1], tf.stop_gradient(final_state), batch_offset
        )
        self._store_window_end(window_start, truths[:, -1], final_ensemble)
        self.window_counter.assign_add(1)

        # Each replica tracks its own slice; the metrics sum their variables over replicas.
        self.loss_tracker.update_state(ops.mean(per_trajectory))
        self.rmse_tracker.update_state(rmse)
        self.reset_tracker.update_state(num_reset)
        return distribute.metric_logs(self.metrics, self.distribute_strategy)

    def compile(self, optimizer="adam", jit_compile="auto", **kwargs):
        """Configure the model for training, as `keras.Model.compile`.

        With `mixed_precision="float16"` the optimizer is wrapped in a
        `keras.optimizers.LossScaleOptimizer` unless it already is one.

        Under a strategy with more than one replica, Keras cannot compile a train step that
        spans devices or workers with XLA (it fails on variables of another device). There,
        `jit_compile=True` compiles each replica's unrolled window and its gradients with XLA,
        and the gradient all-reduce, the optimizer update and the pool update run in graph
        mode.
        """
        if self.mixed_precision == "float16":
            optimizer = keras.optimizers.get(optimizer)
            if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        replicas = self.distribute_strategy.num_replicas_in_sync
        self.replica_jit_compile = jit_compile is True and replicas > 1
        if self.replica_jit_compile:
            jit_compile = False
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def compile_from_config(self, config):
        # Keras skips compiling a loaded model whose class overrides `compile` unless the class
        # also overrides this method. The arguments saved in the `.keras` file are the ones
        # `compile` takes.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, steps_per_epoch=None, **kwargs):
        """Train with online samples; `x` is ignored and may be omitted.

        Spins up the pool on the first call (unless restored from a checkpoint first) and feeds
        Keras a placeholder dataset, because the samples are generated inside `train_step`.
        """
        if steps_per_epoch is None:
            raise ValueError(
                "`steps_per_epoch` is required: training samples are generated online, so Keras "
                "cannot infer an epoch length. Pass for example steps_per_epoch=500."
            )
        strategy = self.distribute_strategy
        distribute.check_replica_batch(self.batch_size, strategy.num_replicas_in_sync)
        if not bool(self.pool_ready.numpy()):
            self.initialize_pool()
        if x is None:
            x = distribute.dummy_dataset(strategy)
        kwargs.setdefault("shuffle", False)
        return super().fit(x, steps_per_epoch=steps_per_epoch, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "dynamics": keras.saving.serialize_keras_object(self.dynamics),
                "analysis": keras.saving.serialize_keras_object(self.analysis),
                "state_dim": self.state_dim,
                "ensemble_size": self.ensemble_size,
                "pool_size": self.pool_size,
                "batch_size": self.batch_size,
                "window_length": self.window_length,
                "initial_spread": self.initial_spread,
                "spin_up_cycles": self.spin_up_cycles,
                "seed": self.seed,
                "loss": self.loss_name,
                "mixed_precision": self.mixed_precision,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["dynamics"] = keras.saving.deserialize_keras_object(config["dynamics"])
        config["analysis"] = keras.saving.deserialize_keras_object(config["analysis"])
        return cls(**config)


def set_network_dtype_policy(analysis, policy):
    """Set the dtype policy `policy` on the hidden layers of a learned analysis.

    The analysis layer, its observation operator and its final layer `output_conv` keep their
    float32 policy. The hidden layers cast their input to the policy's compute dtype. The final
    convolution casts their output back to float32, so the increment a_θ, the residual sum
    E^f + a_θ, the innovation and the state all stay float32. Keeping the output layer in float32
    is also the usual advice for mixed precision, because its result is what the loss compares.

    Args:
        analysis: a learned analysis with an `output_conv` layer (`ResidualCNNAnalysis`).
        policy: a Keras dtype policy name such as `"mixed_bfloat16"`, or `None` to leave every
            layer as it is.
    """
    if policy is None:
        return
    output_layer = getattr(analysis, "output_conv", None)
    if output_layer is None:
        raise NotImplementedError(
            f"Mixed precision needs an analysis whose final layer is its `output_conv` "
            f"attribute, like ResidualCNNAnalysis; {type(analysis).__name__} has none. Train it "
            "with mixed_precision='none'."
        )
    float32_layers = {id(analysis), id(analysis.observation_operator)}
    float32_layers.update(id(layer) for layer in output_layer._flatten_layers(include_self=True))
    # NOTE: Keras 3 has no public iterator over a layer's nested layers; `_flatten_layers` is
    # the helper Keras itself uses to collect them.
    for layer in analysis._flatten_layers(include_self=False, recursive=True):
        if id(layer) not in float32_layers:
            layer.dtype_policy = policy


def portable_standard_normal(shape, seed):
    """Draw float32 standard normal numbers that are the same with and without XLA.

    `tf.random.stateless_normal` and `stateless_uniform` return other numbers for the same seed
    inside an XLA-compiled function than in a graph (measured with TensorFlow 2.21 on CPU), but
    the raw 32-bit Philox output is the same. The uniform numbers u = (k + 0.5) / 2^24 built
    from its top 24 bits lie in (0, 1), and the Box–Muller transform
    z = sqrt(-2 ln u1) cos(2π u2) makes them standard normal. The two compiled versions then
    differ only by the rounding of `log` and `cos`, a few float32 units in the last place.
    Because u1 >= 2^-25, |z| <= 5.9: the tail beyond 5.9 standard deviations (probability
    4e-9) is cut off.

    Args:
        shape: output shape, a tuple of ints.
        seed: stateless seed, an integer tensor of shape (2,).

    Returns:
        A float32 tensor of shape `shape`.
    """
    bits = tf.random.stateless_uniform(
        (2,) + tuple(shape), seed=seed, minval=None, maxval=None, dtype=tf.uint32, alg="philox"
    )
    uniform = (tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) + 0.5) * (2.0**-24)
    radius = tf.sqrt(-2.0 * tf.math.log(uniform[0]))
    return radius * tf.cos((2.0 * np.pi) * uniform[1])
