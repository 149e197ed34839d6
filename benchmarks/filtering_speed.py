"""Filtering speed of a learned analysis a_θ against the EnKF-N, in TensorFlow and in NumPy.

The experiment is the standard Lorenz 96 twin experiment (Nx = 40, F = 8, one RK4 step of 0.05
per cycle, H = I, R = I). Three filters run on the same truth and observations:

- `a_theta`: a learned filter (`keras_da.training.LearnedFilter`, Ne = 1 for the presets), loaded
  from `--model`, filtering with its own dynamics and analysis. Without `--model` the script
  builds an untrained network of the `lorenz96` preset, because the speed does not depend on
  the weights.
- `enkf_n_tf`: keras_da's EnKF-N (`keras_da.baselines.EnKFN`) with 40 members.
- `enkf_n_numpy`: the NumPy EnKF-N of `benchmarks/baselines_speed.py` with 40 members.

The two TensorFlow filters run the cycle as `keras.layers.RNN` over an `AssimilationCell` inside
one `tf.function`, as `keras_da.evaluation.run_filter` does. The NumPy filter loops over cycles
in Python and is batched over runs with NumPy's stacked linear algebra. Each method is timed at
batch 1 and at `--batch` runs: one untimed call, which traces the graph, then `--repeats` timed
calls of `--cycles` cycles, and the median is reported. All timings run in this one process, so
their ratios are comparable.

With `--memory`, the script starts itself again in one subprocess per method and reads the peak
resident set size (RSS) of that subprocess at its end. One more subprocess imports the same
modules, loads the same twin experiment and builds nothing. Its peak RSS is subtracted from
every method's.

NOTE: NumPy's OpenBLAS runs the 40 x 40 products of the NumPy EnKF-N on several threads. On a
2-core CPU busy with another job, that made a batch-1 cycle take 33 ms, against 1.1 ms with
OPENBLAS_NUM_THREADS=1 (OpenBLAS 0.3.31, NumPy 2.4). The report records these thread settings.

The time-averaged analysis RMSE of the timed batch-1 run is reported as a sanity check only:
the run is short, and it shows whether each filter tracks the truth.

Usage:
    python benchmarks/filtering_speed.py --model runs/lorenz96/model.keras --memory \\
        --output runs/filtering_speed.json
"""

import argparse
import datetime
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_da import LinearObservation, Lorenz96  # noqa: E402
from keras_da.baselines import EnKFN  # noqa: E402
from keras_da.cycle import AssimilationCell  # noqa: E402
from keras_da.evaluation import (  # noqa: E402
    TwinExperiment,
    initial_ensemble,
    make_twin_experiment,
    rmse_series,
    summarize_rmse,
)
from keras_da.presets import get_preset  # noqa: E402
from keras_da.training import LearnedFilter  # noqa: E402
from keras_da.training.run import build_learned_filter  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from arguments import non_negative_int, positive_int  # noqa: E402
from baselines_speed import numpy_enkf_n, time_numpy_cycle  # noqa: E402

STATE_DIM = 40
FORCING = 8.0
TIME_STEP = 0.05
ENKF_N_MEMBERS = 40
# The twin experiment of the `lorenz96` preset: 1,000 spin-up cycles, first ensembles spread by
# N(0, 1) around the initial truth.
SPIN_UP_CYCLES = 1000
INITIAL_SPREAD = 1.0
SANITY_BURN_IN = 100
DTYPE = "float32"
UNTRAINED_MODEL = "untrained lorenz96 preset network"

# Method name: (label in the table, implementation).
METHODS = {
    "a_theta": ("a_θ", "TensorFlow"),
    "enkf_n_tf": ("EnKF-N (TF)", "TensorFlow"),
    "enkf_n_numpy": ("EnKF-N (NumPy)", "NumPy"),
}
# Environment variables that set the thread counts of the BLAS and OpenMP, and TensorFlow's
# use of oneDNN kernels.
RUNTIME_VARIABLES = (
    "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS",
)
# The `--only` value of the memory subprocess that imports and loads the twin experiment only.
IMPORTS_ONLY = "imports"


# ---------------------------------------------------------------------------- arguments
def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python benchmarks/filtering_speed.py --model runs/lorenz96/model.keras "
        "--memory --output runs/filtering_speed.json",
    )
    parser.add_argument(
        "--model",
        help="path of the .keras file written by `keras-da train` (default: an untrained network "
        "of the lorenz96 preset, which filters at the same speed)",
    )
    parser.add_argument(
        "--cycles", type=positive_int, default=200,
        help="assimilation cycles per timed call (default 200)",
    )
    parser.add_argument(
        "--batch", type=positive_int, default=256,
        help="independent runs filtered at once for the throughput (default 256)",
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=5,
        help="timed calls per measurement, after one untimed warm-up call; the median is "
        "reported (default 5)",
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0,
        help="seed of the twin experiment, of the first ensembles and of the untrained network "
        "(default 0)",
    )
    parser.add_argument(
        "--jit-compile", action="store_true",
        help="compile the filtering tf.functions with XLA (the NumPy filter is unaffected)",
    )
    parser.add_argument(
        "--memory", action="store_true",
        help="also measure the peak resident set size of each method in its own subprocess",
    )
    parser.add_argument("--output", help="path of the JSON file to write (default: none)")
    # Options of the memory subprocesses that `--memory` starts.
    parser.add_argument(
        "--only", choices=tuple(METHODS) + (IMPORTS_ONLY,), help=argparse.SUPPRESS
    )
    parser.add_argument("--twin", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.model is not None and not os.path.isfile(args.model):
        parser.error(
            f"--model {args.model!r} is not a file. Pass the .keras file written by "
            "`keras-da train`, or omit --model to time an untrained network."
        )
    if args.only is not None and args.twin is None:
        parser.error("--only needs --twin, the .npz file of the twin experiment.")
    return args


# ---------------------------------------------------------------------------- setup
def load_learned_filter(path, seed):
    """Return the learned filter to time and the description of its weights for the report."""
    if path is None:
        keras.utils.set_random_seed(seed)
        return build_learned_filter(get_preset("lorenz96")), UNTRAINED_MODEL

    model = keras.models.load_model(path)
    if not isinstance(model, LearnedFilter):
        raise ValueError(
            f"--model {path!r} contains a {type(model).__name__}, expected a "
            "keras_da.training.LearnedFilter saved by `keras-da train`."
        )
    check_standard_experiment(model, path)
    return model, os.path.abspath(path)


def check_standard_experiment(model, path):
    """Raise `ValueError` unless `model` filters the standard Lorenz 96 experiment of the twin."""
    dynamics = model.dynamics
    operator = model.observation_operator
    found = {
        "state_dim": model.state_dim,
        "dynamics": type(dynamics).__name__,
        "forcing": getattr(dynamics, "forcing", None),
        "time_step": getattr(dynamics, "time_step", None),
        "num_substeps": getattr(dynamics, "num_substeps", None),
        "H is the identity": operator.is_identity(model.state_dim),
        "R variance": operator.variance.tolist(),
    }
    standard = (
        model.state_dim == STATE_DIM
        and isinstance(dynamics, Lorenz96)
        and math.isclose(dynamics.forcing, FORCING)
        and math.isclose(dynamics.time_step, TIME_STEP)
        and dynamics.num_substeps == 1
        and operator.is_identity(STATE_DIM)
        and np.allclose(operator.variance, 1.0)
    )
    if not standard:
        raise ValueError(
            f"--model {path!r} was trained on another experiment ({found}). This benchmark needs "
            f"Lorenz 96 with Nx = {STATE_DIM}, F = {FORCING}, one RK4 step of {TIME_STEP}, H = I "
            "and R = I, as in the lorenz96 preset."
        )


def build_twin(batch, cycles, seed):
    """Return the twin experiment of `batch` runs of `cycles` cycles with unit observation error."""
    return make_twin_experiment(
        Lorenz96(FORCING, TIME_STEP), LinearObservation(variance=1.0), STATE_DIM, batch, cycles,
        SPIN_UP_CYCLES, seed=seed,
    )


def save_twin(twin, path):
    np.savez(
        path, initial_truth=twin.initial_truth, truth=twin.truth,
        observations=twin.observations, seed=twin.seed,
    )


def load_twin(path):
    with np.load(path) as arrays:
        return TwinExperiment(
            arrays["initial_truth"], arrays["truth"], arrays["observations"], int(arrays["seed"])
        )


# ---------------------------------------------------------------------------- timing
def keras_filter(dynamics, analysis, ensemble_size, jit_compile):
    """Return a function that runs the keras_da cycle and returns (seconds per cycle, means).

    The returned function takes the first ensembles `(batch, Ne, Nx)` and the observations
    `(batch, T, Ny)` as NumPy arrays, converts them to tensors outside the timed span, and
    returns the analysis means `(batch, T, Nx)` as a NumPy array.
    """
    cell = AssimilationCell(dynamics, analysis, STATE_DIM, ensemble_size, dtype=DTYPE)
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype=DTYPE)

    @tf.function(jit_compile=jit_compile)
    def filter_sequence(observations, state):
        means, _ = rnn(observations, initial_state=[state])
        return means

    def run(ensemble, observations):
        state = tf.constant(ensemble.reshape(ensemble.shape[0], -1), dtype=DTYPE)
        observations = tf.constant(observations, dtype=DTYPE)
        start = time.perf_counter()
        means = filter_sequence(observations, state).numpy()
        return (time.perf_counter() - start) / observations.shape[1], means

    return run


def numpy_filter(ensemble, observations):
    """Run the NumPy EnKF-N cycle and return (seconds per cycle, analysis means)."""
    return time_numpy_cycle(numpy_enkf_n, ensemble, observations)


def build_filter(method, model, jit_compile):
    """Return the cycle function of `method` (see `keras_filter`) and its ensemble size."""
    if method == "a_theta":
        return (
            keras_filter(model.dynamics, model.analysis, model.ensemble_size, jit_compile),
            model.ensemble_size,
        )
    if method == "enkf_n_tf":
        analysis = EnKFN(LinearObservation(variance=1.0), dtype=DTYPE)
        dynamics = Lorenz96(FORCING, TIME_STEP)
        return keras_filter(dynamics, analysis, ENKF_N_MEMBERS, jit_compile), ENKF_N_MEMBERS
    return numpy_filter, ENKF_N_MEMBERS


def time_filter(run, ensemble, observations, repeats):
    """Time `repeats` calls of `run` after one untimed call.

    Returns:
        The seconds per cycle of every timed call and the analysis means of the last call.
    """
    run(ensemble, observations)
    seconds = []
    for _ in range(repeats):
        seconds_per_cycle, means = run(ensemble, observations)
        seconds.append(seconds_per_cycle)
    return seconds, means


def measure_method(method, model, twin, args, repeats):
    """Time `method` at batch 1 and at `args.batch` runs on `twin`.

    Returns:
        A dict of the ensemble size, the seconds per cycle of every timed call at both batch
        sizes, and the analysis means `(1, T, Nx)` of the last batch-1 call.
    """
    run, ensemble_size = build_filter(method, model, args.jit_compile)
    ensembles = initial_ensemble(twin, ensemble_size, INITIAL_SPREAD, seed=args.seed + 2)
    ensembles = ensembles.astype(DTYPE)
    observations = twin.observations.astype(DTYPE)

    single_seconds, single_means = time_filter(run, ensembles[:1], observations[:1], repeats)
    batched_seconds, _ = time_filter(run, ensembles, observations, repeats)
    return {
        "ensemble_size": ensemble_size,
        "single_seconds": single_seconds,
        "batched_seconds": batched_seconds,
        "single_means": single_means,
    }


# ---------------------------------------------------------------------------- memory
def peak_rss_bytes():
    """Return the peak resident set size of this process, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports `ru_maxrss` in KiB and macOS in bytes.
    return peak if sys.platform == "darwin" else 1024 * peak


def run_memory_subprocess(only, args):
    """Run the measurement `only` in a new process and return its peak RSS in bytes.

    The subprocess does the same work as one measurement of the main process, with one timed
    call per batch size instead of `--repeats`, because calls of the same shapes reuse one
    traced graph.
    """
    command = [
        sys.executable, os.path.abspath(__file__), "--only", only, "--twin", args.twin,
        "--cycles", str(args.cycles), "--batch", str(args.batch), "--seed", str(args.seed),
    ]
    if args.model is not None:
        command += ["--model", args.model]
    if args.jit_compile:
        command.append("--jit-compile")
    # Linux carries the peak RSS of a process's address space before `execve` into `ru_maxrss`
    # after it, and a child of this process has this process's address space until its
    # `execve`. A child started directly would therefore report at least this process's RSS. A
    # bare Python launcher in between limits that inherited peak to its own size, about 10 MiB.
    launcher = ["-c", "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"]
    completed = subprocess.run(
        [sys.executable] + launcher + command, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"The memory subprocess for {only!r} failed with exit code {completed.returncode}. "
            f"Command: {' '.join(command)}\nIts standard error ends with:\n"
            f"{completed.stderr[-3000:]}"
        )
    # The subprocess prints its result as the last line of its standard output.
    lines = completed.stdout.strip().splitlines()
    return json.loads(lines[-1])["peak_rss_bytes"]


def measure_only(args):
    """Run the measurement of a memory subprocess and print its peak RSS as one JSON line."""
    twin = load_twin(args.twin)
    if args.only != IMPORTS_ONLY:
        model = None
        if args.only == "a_theta":
            model, _ = load_learned_filter(args.model, args.seed)
        measure_method(args.only, model, twin, args, repeats=1)
    print(json.dumps({"method": args.only, "peak_rss_bytes": peak_rss_bytes()}))


# ---------------------------------------------------------------------------- report
def finite_or_none(value):
    """Return `value`, or None when it is NaN or infinite, which JSON cannot represent."""
    return value if math.isfinite(value) else None


def sanity_burn_in(cycles):
    """Return the burn-in of the sanity RMSE, 100 cycles or half the cycles of a shorter run."""
    return min(SANITY_BURN_IN, cycles // 2)


def summarize_method(method, measured, twin, args):
    """Return the report entry of one method from its `measure_method` result."""
    label, implementation = METHODS[method]
    single_median = statistics.median(measured["single_seconds"])
    batched_median = statistics.median(measured["batched_seconds"])
    burn_in = sanity_burn_in(args.cycles)
    rmse = rmse_series(measured["single_means"], twin.truth[:1])
    armse = summarize_rmse(rmse, burn_in)["armse"]
    return {
        "label": label,
        "implementation": implementation,
        "ensemble_size": measured["ensemble_size"],
        "jit_compile": args.jit_compile if implementation == "TensorFlow" else None,
        "batch_1": {
            "ms_per_cycle": 1e3 * single_median,
            "ms_per_cycle_per_call": [1e3 * value for value in measured["single_seconds"]],
            "run_cycles_per_second": 1.0 / single_median,
        },
        "batched": {
            "batch": args.batch,
            "ms_per_cycle": 1e3 * batched_median,
            "ms_per_cycle_per_call": [1e3 * value for value in measured["batched_seconds"]],
            "run_cycles_per_second": args.batch / batched_median,
        },
        "sanity_armse": finite_or_none(armse),
    }


def compute_ratios(methods):
    """Return how many times faster a_θ is than each EnKF-N, at batch 1 and batched.

    Both ratios are above 1 when a_θ is faster. The batch-1 ratio divides the EnKF-N time per
    cycle by a_θ's, and the batched ratio divides a_θ's run-cycles per second by the EnKF-N's.
    """
    learned = methods["a_theta"]
    ratios = {}
    for name in ("enkf_n_tf", "enkf_n_numpy"):
        other = methods[name]
        ratios[f"{name}_time_over_a_theta_time_batch_1"] = (
            other["batch_1"]["ms_per_cycle"] / learned["batch_1"]["ms_per_cycle"]
        )
        ratios[f"a_theta_throughput_over_{name}_throughput_batched"] = (
            learned["batched"]["run_cycles_per_second"] / other["batched"]["run_cycles_per_second"]
        )
    return ratios


def machine_info():
    processor = platform.processor() or platform.machine()
    if os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as stream:
            names = [
                line.split(":", 1)[1].strip() for line in stream if line.startswith("model name")
            ]
        processor = names[0] if names else processor
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": processor,
        "cpu_count": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "numpy_blas": f"{blas.get('name')} {blas.get('version')}",
        "tensorflow_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tensorflow_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        # An unset variable is recorded as None, and the library then chooses its own setting.
        "environment": {name: os.environ.get(name) for name in RUNTIME_VARIABLES},
    }


def format_number(value, digits):
    return "—" if value is None else f"{value:.{digits}f}"


def methods_table(report):
    """Return the Markdown table of times, throughputs, memory and sanity RMSE per method."""
    batch = report["options"]["batch"]
    memory = report["memory"]
    lines = [
        f"| method | Ne | ms per cycle, batch 1 | ms per cycle, batch {batch} | "
        f"run-cycles/s, batch {batch} | peak RSS above imports (MiB) | aRMSE (sanity check) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in report["methods"].items():
        extra = memory["above_imports_mib"][name] if memory else None
        lines.append(
            f"| {entry['label']} | {entry['ensemble_size']} | "
            f"{entry['batch_1']['ms_per_cycle']:.3f} | {entry['batched']['ms_per_cycle']:.3f} | "
            f"{entry['batched']['run_cycles_per_second']:.0f} | {format_number(extra, 1)} | "
            f"{format_number(entry['sanity_armse'], 3)} |"
        )
    return lines


def ratios_table(report):
    """Return the Markdown table of how many times faster a_θ is than each EnKF-N."""
    batch = report["options"]["batch"]
    ratios = report["ratios"]
    lines = [
        f"| a_θ is faster than | by time per cycle, batch 1 | by run-cycles/s, batch {batch} |",
        "|---|---|---|",
    ]
    for name in ("enkf_n_tf", "enkf_n_numpy"):
        time_ratio = ratios[f"{name}_time_over_a_theta_time_batch_1"]
        throughput_ratio = ratios[f"a_theta_throughput_over_{name}_throughput_batched"]
        lines.append(f"| {METHODS[name][0]} | {time_ratio:.2f}x | {throughput_ratio:.2f}x |")
    return lines


def markdown_report(report):
    """Return the tables of the report and their notes as Markdown."""
    lines = methods_table(report) + [""] + ratios_table(report) + [""]

    memory = report["memory"]
    if memory:
        lines.append(
            "Peak RSS of a process that only imports and loads the twin experiment: "
            f"{memory['imports_only_peak_rss_mib']:.1f} MiB."
        )
    first_scored = report["sanity_check"]["burn_in_cycles"] + 1
    lines.append(
        f"aRMSE: batch-1 run, cycles {first_scored} to {report['options']['cycles']} "
        "(sanity check only)."
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.only is not None:
        measure_only(args)
        return 0

    start = time.perf_counter()
    model, model_description = load_learned_filter(args.model, args.seed)
    twin = build_twin(args.batch, args.cycles, args.seed)

    methods = {}
    for method in METHODS:
        measured = measure_method(method, model, twin, args, args.repeats)
        methods[method] = summarize_method(method, measured, twin, args)
        print(
            f"{method}: {methods[method]['batch_1']['ms_per_cycle']:.3f} ms per cycle at batch 1, "
            f"{methods[method]['batched']['ms_per_cycle']:.3f} ms at batch {args.batch}",
            flush=True,
        )

    memory = None
    if args.memory:
        mebibyte = 2.0**20
        with tempfile.TemporaryDirectory() as directory:
            args.twin = os.path.join(directory, "twin.npz")
            save_twin(twin, args.twin)
            imports_only = run_memory_subprocess(IMPORTS_ONLY, args)
            peaks = {method: run_memory_subprocess(method, args) for method in METHODS}
        args.twin = None
        memory = {
            "note": "Peak resident set size (ru_maxrss) of one subprocess per method, with one "
            "untimed and one timed call at batch 1 and at the batch size. The imports-only "
            "subprocess imports the same modules, loads the twin experiment and builds nothing.",
            "imports_only_peak_rss_mib": imports_only / mebibyte,
            "peak_rss_mib": {method: peak / mebibyte for method, peak in peaks.items()},
            "above_imports_mib": {
                method: (peak - imports_only) / mebibyte for method, peak in peaks.items()
            },
        }

    wall_seconds = time.perf_counter() - start
    report = {
        "command": " ".join(["python", "benchmarks/filtering_speed.py"] + sys.argv[1:]),
        "experiment": {
            "model": "Lorenz 96",
            "state_dim": STATE_DIM,
            "forcing": FORCING,
            "time_step": TIME_STEP,
            "observation": "H = I, R = I",
            "spin_up_cycles": SPIN_UP_CYCLES,
            "initial_spread": INITIAL_SPREAD,
            "dtype": DTYPE,
        },
        "model": model_description,
        "model_mixed_precision": getattr(model, "mixed_precision", "none"),
        "options": {
            "cycles": args.cycles,
            "batch": args.batch,
            "repeats": args.repeats,
            "seed": args.seed,
            "jit_compile": args.jit_compile,
            "memory": args.memory,
        },
        "machine": machine_info(),
        "methods": methods,
        "ratios": compute_ratios(methods),
        "memory": memory,
        "sanity_check": {
            "note": "Time-averaged analysis RMSE of the timed batch-1 run after the burn-in. "
            "The run is short, so this only checks that each filter tracks the truth.",
            "burn_in_cycles": sanity_burn_in(args.cycles),
            "armse": {method: entry["sanity_armse"] for method, entry in methods.items()},
        },
        "wall_seconds": wall_seconds,
    }

    print()
    print(markdown_report(report))
    print(f"Wall time: {wall_seconds:.0f} s")
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
