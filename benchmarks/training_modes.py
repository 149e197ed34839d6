"""Training and filtering speed in graph mode and with XLA, and the accuracy of bfloat16 training.

Speed: for each mode, one `LearnedFilter` built from a preset is compiled and trained for a few
untimed warm-up steps (tracing and, with XLA, compiling). Filtering is warmed up the same way:
`--cycles` cycles of a batch of `--filter-batch` trajectories through
`model((observations, initial_ensemble))` inside one `tf.function`, with the mode's
`jit_compile`. Then `--repeats` rounds time `--steps` training steps and one filtering call of
every mode in turn, and the median over rounds is reported. All modes run in one process.

Accuracy (with `--accuracy-steps N`): a float32 and a bfloat16 filter are trained for N steps
from the same seed and scored on the same fresh twin experiment (time-averaged analysis RMSE
after a burn-in, mean over runs).

Usage:
    python benchmarks/training_modes.py --preset lorenz96 --output runs/training_modes.json
    python benchmarks/training_modes.py --preset lorenz96 --modes graph,bfloat16 \\
        --accuracy-steps 1000 --output runs/mixed_precision.json
"""

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_da.evaluation import make_twin_experiment, rmse_series, run_filter, summarize_rmse  # noqa: E402
from keras_da.experiment import build_observation_operator  # noqa: E402
from keras_da.presets import PRESETS, get_preset  # noqa: E402
from keras_da.training.run import build_learned_filter, make_optimizer  # noqa: E402

# Mode name: (jit_compile, mixed_precision).
MODES = {
    "graph": (False, "none"),
    "xla": (True, "none"),
    "bfloat16": (False, "bfloat16"),
    "bfloat16-xla": (True, "bfloat16"),
}


def build(preset, mode):
    jit_compile, mixed_precision = MODES[mode]
    keras.utils.set_random_seed(preset["training"]["seed"])
    model = build_learned_filter(preset, mixed_precision=mixed_precision)
    model.compile(optimizer=make_optimizer(preset["training"]), jit_compile=jit_compile)
    return model


def time_training(model, steps):
    """Return the training steps per second of one `fit` call of `steps` steps."""
    start = time.perf_counter()
    model.fit(steps_per_epoch=steps, epochs=1, verbose=0)
    return steps / (time.perf_counter() - start)


def filter_inputs(model, batch, cycles):
    """Return observations `(batch, cycles, Ny)` and a first ensemble taken from the pool."""
    truth = tf.gather(model.pool_truth, tf.range(batch))
    observations = tf.repeat(model.observation_operator(truth)[:, None, :], cycles, axis=1)
    ensemble = tf.gather(model.pool_ensemble, tf.range(batch))
    return observations, tf.reshape(ensemble, (batch, model.ensemble_size, model.state_dim))


def time_cycles(run, inputs, cycles):
    """Return the cycles per second of one call of the compiled filter `run`."""
    start = time.perf_counter()
    run(*inputs).numpy()
    return cycles / (time.perf_counter() - start)


def score(model, preset, num_runs, num_cycles, burn_in):
    """Return the time-averaged analysis RMSE of `model` on a fresh twin experiment."""
    evaluation = preset["evaluation"]
    twin = make_twin_experiment(
        model.dynamics,
        build_observation_operator(preset["observation"]),
        model.state_dim,
        num_runs,
        num_cycles,
        preset["spin_up_cycles"],
        seed=evaluation["seed"],
    )
    means = run_filter(
        model.dynamics, model.analysis, twin, model.ensemble_size, evaluation["initial_spread"], seed=7
    )
    return summarize_rmse(rmse_series(means, twin.truth), burn_in)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="lorenz96", choices=sorted(PRESETS))
    parser.add_argument("--modes", default="graph,xla", help=f"comma-separated modes of {tuple(MODES)}")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed training steps (tracing, compiling)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per round and mode")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds; the median is reported")
    parser.add_argument("--filter-batch", type=int, default=64, help="trajectories filtered together")
    parser.add_argument("--cycles", type=int, default=200, help="cycles per timed filtering call")
    parser.add_argument("--accuracy-steps", type=int, default=0, help="train this many more steps per mode and score the RMSE (0: speed only)")
    parser.add_argument("--accuracy-runs", type=int, default=8, help="twin-experiment runs scored")
    parser.add_argument("--accuracy-cycles", type=int, default=2000, help="cycles per scored run")
    parser.add_argument("--accuracy-burn-in", type=int, default=500, help="cycles before scoring")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    args = parser.parse_args()

    preset = get_preset(args.preset)
    results = {
        "preset": args.preset,
        "network": preset["network"],
        "batch_size": preset["training"]["batch_size"],
        "window_length": preset["training"]["window_length"],
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "devices": [d.device_type for d in tf.config.list_physical_devices()],
        },
        "modes": {},
    }
    modes = args.modes.split(",")
    for mode in modes:
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")

    # Build and warm up every mode first, then time them in interleaved rounds. A change of
    # machine load during the run then affects every mode alike, and the median damps it.
    models, filters, entries = {}, {}, {}
    for mode in modes:
        model = build(preset, mode)
        start = time.perf_counter()
        model.fit(steps_per_epoch=args.warmup_steps, epochs=1, verbose=0)
        first_training = time.perf_counter() - start
        inputs = filter_inputs(model, args.filter_batch, args.cycles)
        run = tf.function(lambda y, e, model=model: model((y, e)), jit_compile=MODES[mode][0])
        start = time.perf_counter()
        run(*inputs).numpy()
        first_filter = time.perf_counter() - start
        models[mode], filters[mode] = model, (run, inputs)
        entries[mode] = {
            "first_training_call_s": round(first_training, 2),
            "first_filter_call_s": round(first_filter, 2),
            "training_steps_per_s": [],
            "filter_cycles_per_s": [],
        }
    for _ in range(args.repeats):
        for mode in modes:
            entries[mode]["training_steps_per_s"].append(time_training(models[mode], args.steps))
            entries[mode]["filter_cycles_per_s"].append(time_cycles(*filters[mode], args.cycles))
    for mode in modes:
        entry = entries[mode]
        for key in ("training_steps_per_s", "filter_cycles_per_s"):
            entry[f"{key}_all"] = [round(v, 2) for v in entry[key]]
            entry[key] = round(float(np.median(entry[key])), 2)
        if args.accuracy_steps:
            model = models[mode]
            start = time.perf_counter()
            model.fit(steps_per_epoch=args.accuracy_steps, epochs=1, verbose=0)
            entry["accuracy_training_s"] = round(time.perf_counter() - start, 1)
            entry["trained_steps"] = int(model.window_counter.numpy())
            summary = score(model, preset, args.accuracy_runs, args.accuracy_cycles, args.accuracy_burn_in)
            entry["analysis_rmse"] = round(summary["armse"], 4)
            entry["analysis_rmse_stderr"] = round(summary["armse_stderr"], 4)
        results["modes"][mode] = entry
        print(mode, json.dumps(entry), flush=True)
    if args.output:
        os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
        with open(args.output, "w") as stream:
            json.dump(results, stream, indent=2)


if __name__ == "__main__":
    main()
