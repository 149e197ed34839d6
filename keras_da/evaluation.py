"""Evaluation of filters on one twin experiment: the same truth and observations for every method."""

import dataclasses
import logging
import time

import keras
import numpy as np
import tensorflow as tf

from keras_da.cycle import AssimilationCell
from keras_da.twin import check_positive_int, random_initial_states, simulate, spin_up

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TwinExperiment:
    """Truth and observations of `num_runs` independent runs, as NumPy arrays.

    Attributes:
        initial_truth: the truth at time 0, `(runs, Nx)`.
        truth: the truth at times 1..T, `(runs, T, Nx)`.
        observations: observations at times 1..T, `(runs, T, Ny)`.
        seed: the seed that generated them.
    """

    initial_truth: np.ndarray
    truth: np.ndarray
    observations: np.ndarray
    seed: int

    @property
    def num_runs(self):
        return self.truth.shape[0]

    @property
    def num_cycles(self):
        return self.truth.shape[1]

    @property
    def state_dim(self):
        return self.truth.shape[2]


def make_twin_experiment(
    dynamics, observation_operator, state_dim, num_runs, num_cycles, spin_up_cycles, seed
):
    """Spin up `num_runs` truths on the attractor and observe `num_cycles` cycles of each."""
    check_positive_int("num_runs", num_runs)
    check_positive_int("num_cycles", num_cycles)
    x0 = random_initial_states(num_runs, state_dim, seed=seed, offset=8.0, scale=1.0)
    x0 = spin_up(dynamics, x0, spin_up_cycles)
    truth, observations = simulate(dynamics, observation_operator, x0, num_cycles, seed=seed + 1)
    return TwinExperiment(np.asarray(x0), np.asarray(truth), np.asarray(observations), seed)


def initial_ensemble(twin, ensemble_size, spread, seed):
    """Perturb the initial truth into a first ensemble `(runs, Ne, Nx)` with N(0, spread²) noise."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((twin.num_runs, ensemble_size, twin.state_dim))
    return (twin.initial_truth[:, None, :] + spread * noise).astype(twin.truth.dtype)


def run_filter(
    dynamics, analysis, twin, ensemble_size=1, initial_spread=1.0, seed=0, chunk_length=2000,
    dtype="float32",
):
    """Filter every run of `twin` with one analysis and return the analysis means `(runs, T, Nx)`.

    The cycle runs as a stateful-style sequence of `keras.layers.RNN` calls over chunks of
    `chunk_length` cycles (each chunk starts from the previous chunk's final ensemble), which
    keeps the traced graph small for any T.
    """
    state_dim = twin.state_dim
    cell = AssimilationCell(dynamics, analysis, state_dim, ensemble_size, dtype=dtype)
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype=dtype)
    ensemble = initial_ensemble(twin, ensemble_size, initial_spread, seed).astype(dtype)
    state = tf.constant(ensemble.reshape(twin.num_runs, -1))

    @tf.function(reduce_retracing=True)
    def filter_chunk(observations, state):
        means, final_state = rnn(observations, initial_state=[state])
        return means, final_state

    outputs = []
    observations = twin.observations.astype(dtype)
    for start in range(0, twin.num_cycles, chunk_length):
        chunk = tf.constant(observations[:, start : start + chunk_length])
        means, state = filter_chunk(chunk, state)
        outputs.append(means.numpy())
    return np.concatenate(outputs, axis=1)


def rmse_series(analysis_means, truth):
    """Return the spatial RMSE between analysis means and truth, `(runs, T)`."""
    return np.sqrt(np.mean((np.asarray(analysis_means, "float64") - truth) ** 2, axis=-1))


def summarize_rmse(rmse, burn_in):
    """Time-average the RMSE after `burn_in` cycles and summarise it across runs.

    Returns:
        A dict with `armse` (mean over runs of the per-run time average), `armse_std` (standard
        deviation across runs), `armse_stderr` (standard error of the mean), `per_run`, and
        `diverged_runs` (runs whose RMSE became non-finite).
    """
    if burn_in >= rmse.shape[1]:
        raise ValueError(
            f"`burn_in` ({burn_in}) must be smaller than the number of cycles ({rmse.shape[1]})."
        )
    per_run = rmse[:, burn_in:].mean(axis=1)
    finite = np.isfinite(per_run)
    num_runs = len(per_run)
    std = float(np.std(per_run, ddof=1)) if num_runs > 1 else float("nan")
    return {
        "armse": float(np.mean(per_run)),
        "armse_std": std,
        "armse_stderr": std / np.sqrt(num_runs) if num_runs > 1 else float("nan"),
        "per_run": [float(v) for v in per_run],
        "diverged_runs": int(num_runs - finite.sum()),
    }


def evaluate_methods(
    methods, dynamics, twin, burn_in, initial_spread=1.0, seed=0, keep_series=True, dtype="float32"
):
    """Run every method on the same twin experiment.

    Args:
        methods: dict from a method name to `(analysis_layer, ensemble_size)`.
        dynamics: the model M.
        twin: a `TwinExperiment`.
        burn_in: cycles left out of the time average.
        initial_spread: standard deviation of the first ensemble around the initial truth.
        seed: seed of the first ensembles (the same for every method).
        keep_series: whether to return the RMSE time series and analysis means too.
        dtype: dtype of the cycle ("float32" or "float64"); the analysis layers must match it.

    Returns:
        dict from method name to a summary dict (see `summarize_rmse`) with `seconds` and
        `ensemble_size` added, and, when `keep_series`, `rmse_series` `(runs, T)` and
        `analysis_means` `(runs, T, Nx)` as NumPy arrays.
    """
    results = {}
    for name, (analysis, ensemble_size) in methods.items():
        start = time.perf_counter()
        means = run_filter(
            dynamics, analysis, twin, ensemble_size, initial_spread, seed, dtype=dtype
        )
        seconds = time.perf_counter() - start
        rmse = rmse_series(means, twin.truth)
        summary = summarize_rmse(rmse, burn_in)
        summary.update({"seconds": seconds, "ensemble_size": ensemble_size})
        logger.info(
            "%-12s aRMSE %.4f ± %.4f (std over %d runs), %.1f s",
            name, summary["armse"], summary["armse_std"], twin.num_runs, seconds,
        )
        if keep_series:
            summary["rmse_series"] = rmse
            summary["analysis_means"] = means
        results[name] = summary
    return results
