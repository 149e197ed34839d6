"""Time per assimilation cycle of the classical filters: keras_da against plain NumPy.

One cycle is the Lorenz 96 forecast of every member (one RK4 step of 0.05, Nx = 40) followed by
the analysis (H = I, R = I). keras_da runs the cycle as `keras.layers.RNN` over an
`AssimilationCell` inside one `tf.function`, as `keras_da.evaluation.run_filter` does. The NumPy
reference runs the same forecast and the same update in a Python loop over cycles, batched over
runs with NumPy's stacked linear algebra. Both are timed in the same process, keras_da after one
untimed run that traces the graph.

Usage:
    python benchmarks/baselines_speed.py --output runs/baselines_speed.json
"""

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_da import LinearObservation, Lorenz96  # noqa: E402
from keras_da.baselines import EnKF, EnKFN, ETKF, ThreeDVar  # noqa: E402
from keras_da.baselines.enkf_n import GRID_SIZE, GRID_SPAN  # noqa: E402
from keras_da.cycle import AssimilationCell  # noqa: E402
from keras_da.evaluation import initial_ensemble, make_twin_experiment  # noqa: E402

FORCING = 8.0
TIME_STEP = 0.05


# ---------------------------------------------------------------------------- NumPy references
def numpy_lorenz96_step(x):
    """Advance Lorenz 96 states `(..., Nx)` by one RK4 step."""

    def tendency(x):
        return (np.roll(x, -1, -1) - np.roll(x, 2, -1)) * np.roll(x, 1, -1) - x + FORCING

    k1 = tendency(x)
    k2 = tendency(x + 0.5 * TIME_STEP * k1)
    k3 = tendency(x + 0.5 * TIME_STEP * k2)
    k4 = tendency(x + TIME_STEP * k3)
    return x + TIME_STEP / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def symmetric_function(vectors, values):
    return (vectors * values[:, None, :]) @ np.swapaxes(vectors, 1, 2)


def numpy_three_dvar(ensemble, observation, background_std):
    gain = background_std**2 / (background_std**2 + 1.0)
    return ensemble + gain * (observation - ensemble.mean(axis=1))[:, None, :]


def numpy_etkf(ensemble, observation, inflation):
    size = ensemble.shape[1]
    mean = ensemble.mean(axis=1)
    anomalies = ensemble - mean[:, None, :]
    innovation = observation - mean
    values, vectors = np.linalg.eigh(anomalies @ np.swapaxes(anomalies, 1, 2))
    shifted = np.maximum(values, 0.0) + (size - 1) / inflation**2
    projected = np.einsum("bji,bj->bi", vectors, np.einsum("bjx,bx->bj", anomalies, innovation))
    weights = np.einsum("bij,bj->bi", vectors, projected / shifted)
    transform = symmetric_function(vectors, np.sqrt((size - 1) / shifted))
    return mean[:, None, :] + (weights[:, None, :] + transform) @ anomalies


def numpy_enkf(ensemble, observation, inflation, rng):
    size = ensemble.shape[1]
    mean = ensemble.mean(axis=1, keepdims=True)
    ensemble = mean + inflation * (ensemble - mean)
    anomalies = ensemble - mean
    perturbed = observation[:, None, :] + rng.standard_normal(ensemble.shape).astype(ensemble.dtype)
    innovations = perturbed - ensemble
    shifted = anomalies @ np.swapaxes(anomalies, 1, 2) + (size - 1) * np.eye(size, dtype=ensemble.dtype)
    weights = np.linalg.solve(shifted, anomalies @ np.swapaxes(innovations, 1, 2))
    return ensemble + np.swapaxes(weights, 1, 2) @ anomalies


def numpy_enkf_n(ensemble, observation):
    """Return the EnKF-N analysis (exponent (Ne + 1) / 2, ε_N = 1 + 1/Ne), bisecting D′(ζ)."""
    size = ensemble.shape[1]
    epsilon, count = 1.0 + 1.0 / size, size + 1.0
    mean = ensemble.mean(axis=1)
    anomalies = ensemble - mean[:, None, :]
    innovation = observation - mean
    values, vectors = np.linalg.eigh(anomalies @ np.swapaxes(anomalies, 1, 2))
    values = np.maximum(values, 0.0)
    projected = np.einsum("bji,bj->bi", vectors, np.einsum("bjx,bx->bj", anomalies, innovation))

    def slope(zeta):
        ratios = projected[:, None, :] ** 2 / (zeta[..., None] + values[:, None, :]) ** 2
        return 0.5 * ratios.sum(-1) + 0.5 * epsilon - 0.5 * count / zeta

    def cost(zeta):
        ratios = projected[:, None, :] ** 2 / (zeta[..., None] + values[:, None, :])
        return -0.5 * ratios.sum(-1) + 0.5 * epsilon * zeta - 0.5 * count * np.log(zeta)

    grid = np.broadcast_to(
        count / epsilon * np.geomspace(GRID_SPAN, 1.0, GRID_SIZE), (len(values), GRID_SIZE)
    ).astype(ensemble.dtype)
    slopes, costs = slope(grid), cost(grid)
    valid = (slopes[:, :-1] <= 0) & (slopes[:, 1:] >= 0)
    start = np.where(valid, np.minimum(costs[:, :-1], costs[:, 1:]), np.inf).argmin(axis=1)
    rows = np.arange(len(values))
    low, high = grid[rows, start], grid[rows, start + 1]
    for _ in range(40):
        middle = 0.5 * (low + high)
        negative = slope(middle[:, None])[:, 0] < 0
        low, high = np.where(negative, middle, low), np.where(negative, high, middle)
    zeta = 0.5 * (low + high)

    shifted = values + zeta[:, None]
    weights = np.einsum("bij,bj->bi", vectors, projected / shifted)
    hessian = symmetric_function(vectors, shifted) - (2.0 * zeta**2 / count)[:, None, None] * (
        weights[:, :, None] * weights[:, None, :]
    )
    hessian_values, hessian_vectors = np.linalg.eigh(hessian)
    transform = symmetric_function(hessian_vectors, np.sqrt((size - 1) / hessian_values))
    return mean[:, None, :] + (weights[:, None, :] + transform) @ anomalies


# ---------------------------------------------------------------------------- timing
def time_keras_cycle(analysis, ensemble, observations, dtype):
    """Return seconds per cycle of the keras_da cycle and its analysis means `(batch, T, Nx)`."""
    batch, ensemble_size, state_dim = ensemble.shape
    cell = AssimilationCell(Lorenz96(), analysis, state_dim, ensemble_size, dtype=dtype)
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype=dtype)

    @tf.function
    def filter_sequence(observations, state):
        return rnn(observations, initial_state=[state])

    state = tf.constant(ensemble.reshape(batch, -1), dtype=dtype)
    observations = tf.constant(observations, dtype=dtype)
    filter_sequence(observations, state)[0].numpy()  # trace and warm up
    start = time.perf_counter()
    means, _ = filter_sequence(observations, state)
    means.numpy()
    return (time.perf_counter() - start) / observations.shape[1], np.asarray(means)


def time_numpy_cycle(update, ensemble, observations):
    """Return seconds per cycle of the NumPy cycle and its analysis means `(batch, T, Nx)`."""
    start = time.perf_counter()
    means = []
    for k in range(observations.shape[1]):
        ensemble = update(numpy_lorenz96_step(ensemble), observations[:, k])
        means.append(ensemble.mean(axis=1))
    return (time.perf_counter() - start) / observations.shape[1], np.stack(means, axis=1)


def filters(dtype):
    operator = LinearObservation(variance=1.0)
    rng = np.random.default_rng(0)
    return {
        # name: (keras_da layer, NumPy update, Ne)
        "3dvar": (
            ThreeDVar(operator, background_std=0.5, dtype=dtype),
            lambda e, y: numpy_three_dvar(e, y, 0.5),
            1,
        ),
        "etkf": (
            ETKF(operator, inflation=1.02, dtype=dtype),
            lambda e, y: numpy_etkf(e, y, 1.02),
            20,
        ),
        "enkf": (
            EnKF(operator, inflation=1.2, seed=1, dtype=dtype),
            lambda e, y: numpy_enkf(e, y, 1.2, rng),
            20,
        ),
        "enkf_n": (EnKFN(operator, dtype=dtype), numpy_enkf_n, 20),
    }


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="path of the JSON file to write")
    parser.add_argument(
        "--batch-sizes", default="1,64", help="comma-separated numbers of runs (default 1,64)"
    )
    parser.add_argument(
        "--num-cycles", type=int, default=300, help="timed cycles per measurement (default 300)"
    )
    parser.add_argument(
        "--dtype", default="float32", choices=("float32", "float64"), help="floating dtype of both"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    operator = LinearObservation(variance=1.0)
    twin = make_twin_experiment(
        Lorenz96(), operator, 40, max(batch_sizes), args.num_cycles, 1000, seed=5
    )

    rows = []
    print(f"{'filter':8s} {'Ne':>3s} {'batch':>5s} {'keras_da ms':>12s} {'NumPy ms':>9s} "
          f"{'NumPy/keras':>11s} {'aRMSE k/N':>13s}")
    for name, (layer, numpy_update, ensemble_size) in filters(args.dtype).items():
        for batch in batch_sizes:
            ensemble = initial_ensemble(twin, ensemble_size, 1.0, seed=0)[:batch].astype(args.dtype)
            observations = twin.observations[:batch].astype(args.dtype)
            keras_seconds, keras_means = time_keras_cycle(layer, ensemble, observations, args.dtype)
            numpy_seconds, numpy_means = time_numpy_cycle(numpy_update, ensemble, observations)

            # The RMSE over the last two thirds of the cycles checks that both filters track the
            # truth.
            first = args.num_cycles // 3
            truth = twin.truth[:batch, first:]
            keras_rmse = float(np.sqrt(np.mean((keras_means[:, first:] - truth) ** 2)))
            numpy_rmse = float(np.sqrt(np.mean((numpy_means[:, first:] - truth) ** 2)))
            row = {
                "filter": name,
                "ensemble_size": ensemble_size,
                "batch": batch,
                "keras_da_ms_per_cycle": 1e3 * keras_seconds,
                "numpy_ms_per_cycle": 1e3 * numpy_seconds,
                "keras_da_rmse": keras_rmse,
                "numpy_rmse": numpy_rmse,
            }
            rows.append(row)
            print(
                f"{name:8s} {ensemble_size:3d} {batch:5d} {1e3 * keras_seconds:12.3f} "
                f"{1e3 * numpy_seconds:9.3f} {numpy_seconds / keras_seconds:11.2f} "
                f"{keras_rmse:6.3f}/{numpy_rmse:6.3f}",
                flush=True,
            )

    wall_seconds = time.perf_counter() - start
    print(f"Wall time: {wall_seconds:.0f} s")
    report = {
        "command": " ".join(["python", "benchmarks/baselines_speed.py"] + sys.argv[1:]),
        "dtype": args.dtype,
        "num_cycles": args.num_cycles,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
        },
        "wall_seconds": wall_seconds,
        "rows": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
