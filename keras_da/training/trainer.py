"""Online training of a learned analysis through the forecast–analysis cycle (TBPTT)."""

import logging

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_da.cycle import AssimilationCell
from keras_da.twin import check_positive_int, random_initial_states, spin_up

logger = logging.getLogger(__name__)


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

    Observation noise is drawn with `tf.random.stateless_normal` keyed on (`seed`, window
    counter), and the counter is a model weight, so the same seed gives the same run and a run
    restored from a checkpoint continues the same noise sequence.

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
        **kwargs,
    ):
        super().__init__(**kwargs)
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

        self.pool_truth = self.add_weight(
            shape=(pool_size, state_dim), initializer="zeros", trainable=False, name="pool_truth"
        )
        self.pool_ensemble = self.add_weight(
            shape=(pool_size, ensemble_size * state_dim),
            initializer="zeros",
            trainable=False,
            name="pool_ensemble",
        )
        self.window_counter = self.add_weight(
            shape=(), initializer="zeros", dtype="int64", trainable=False, name="window_counter"
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

    def _pool_indices(self):
        windows_per_pass = self.pool_size // self.batch_size
        start = (self.window_counter % windows_per_pass) * self.batch_size
        return tf.range(start, start + self.batch_size)

    def generate_window(self, truth):
        """Return the next L truths `(B, L, Nx)` and observations `(B, L, Ny)` from `truth` `(B, Nx)`."""
        seed = tf.stack([tf.constant(self.seed, tf.int64), self.window_counter.value])
        noise = self.observation_operator.sample_noise(
            (self.batch_size, self.window_length), self.state_dim, seed, truth.dtype
        )
        truths = []
        for _ in range(self.window_length):
            truth = self.dynamics(truth)
            truths.append(truth)
        truths = ops.stack(truths, axis=1)
        return truths, self.observation_operator(truths) + noise

    def _reset_diverged(self, truth, ensemble):
        """Replace non-finite analysis ensembles by a fresh perturbation of their truth."""
        members = ops.reshape(ensemble, (-1, self.ensemble_size, self.state_dim))
        finite = ops.all(ops.isfinite(members), axis=(1, 2))
        seed = tf.stack([tf.constant(self.seed + 7, tf.int64), self.window_counter.value])
        noise = tf.random.stateless_normal(ops.shape(members), seed=seed, dtype=members.dtype)
        fresh = truth[:, None, :] + self.initial_spread * noise
        members = ops.where(finite[:, None, None], members, fresh)
        num_reset = ops.sum(ops.cast(ops.logical_not(finite), "float32"))
        return ops.reshape(members, (-1, self.ensemble_size * self.state_dim)), num_reset

    # ------------------------------------------------------------------ Keras API
    def call(self, inputs, training=False):
        observations, initial_ensemble = inputs
        initial_state = ops.reshape(initial_ensemble, (-1, self.ensemble_size * self.state_dim))
        means, _ = self.rnn(observations, initial_state=[initial_state], training=training)
        return means

    def window_loss(self, analysis_means, truths):
        """Return (mean squared error, mean spatial RMSE) of analysis means against truths."""
        squared = ops.mean(ops.square(analysis_means - truths), axis=-1)
        return ops.mean(squared), ops.mean(ops.sqrt(squared))

    def train_step(self, data):
        del data  # samples are generated online
        indices = self._pool_indices()
        truth0 = tf.gather(self.pool_truth, indices)
        ensemble0 = tf.gather(self.pool_ensemble, indices)

        # Generate: truth and observations of the next window, without gradient.
        truths, observations = self.generate_window(truth0)

        # Unroll the cycle and differentiate through the whole window.
        with tf.GradientTape() as tape:
            means, final_state = self.rnn(observations, initial_state=[ensemble0], training=True)
            loss, rmse = self.window_loss(means, truths)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)

        # Truncate: store the window's end without gradient as the next window's start.
        final_ensemble, num_reset = self._reset_diverged(
            truths[:, -1], tf.stop_gradient(final_state)
        )
        rows = indices[:, None]
        self.pool_truth.assign(tf.tensor_scatter_nd_update(self.pool_truth.value, rows, truths[:, -1]))
        self.pool_ensemble.assign(
            tf.tensor_scatter_nd_update(self.pool_ensemble.value, rows, final_ensemble)
        )
        self.window_counter.assign_add(1)

        self.loss_tracker.update_state(loss)
        self.rmse_tracker.update_state(rmse)
        self.reset_tracker.update_state(num_reset)
        return {m.name: m.result() for m in self.metrics}

    def fit(self, x=None, steps_per_epoch=None, **kwargs):
        """Train with online samples; `x` is ignored and may be omitted.

        Spins up the pool on the first call (unless restored from a checkpoint first) and feeds
        Keras a dummy dataset, because the samples are generated inside `train_step`.
        """
        if steps_per_epoch is None:
            raise ValueError(
                "`steps_per_epoch` is required: training samples are generated online, so Keras "
                "cannot infer an epoch length. Pass for example steps_per_epoch=500."
            )
        if not bool(self.pool_ready.numpy()):
            self.initialize_pool()
        if x is None:
            x = tf.data.Dataset.from_tensors(0.0).repeat()
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
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["dynamics"] = keras.saving.deserialize_keras_object(config["dynamics"])
        config["analysis"] = keras.saving.deserialize_keras_object(config["analysis"])
        return cls(**config)
