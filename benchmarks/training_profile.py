"""Where a training step's time goes, and its convolution FLOP rate against the matmul rate.

In one process, for one network and batch (a preset plus overrides):

1. The float32 matrix-multiply rate of this machine: square matmuls of `--matmul-sizes`,
   in graph mode and with XLA; the fastest is the reference rate.
2. The time of a full training step (`LearnedFilter.fit`, one call of `--steps` steps), in
   graph mode and with XLA, with and without `steps_per_execution` (several steps per call
   into the compiled function, less Python between steps).
3. The convolution FLOPs of one step, counted from the network's kernels. Each periodic
   convolution costs 2 B Ne Nx k C_in C_out FLOPs per cycle forward, and three times that with
   its backward pass (gradients of its input and of its kernel). A step has L cycles. Divided
   by the step time, this gives the rate at which the step does useful convolution work, and
   its fraction of the matmul rate.
4. A breakdown of the XLA step into parts timed on their own with the model's own methods:
   data generation (`generate_window`: truth propagation and observation noise), the unrolled
   window with its gradients (`window_gradients`), and inside it the network alone (L forward
   and backward passes of the analysis) and the dynamics alone (L RK4 steps with gradients);
   the optimizer update; and the rest of the step (pool gather and scatter, divergence check,
   metrics, Keras's loop), as the full step minus the parts.

Thread settings (`--threads 1,2`) need a fresh TensorFlow runtime each, so each setting other
than the first reruns the step timing in a subprocess.

Usage:
    python benchmarks/training_profile.py --output runs/training_profile.json
    python benchmarks/training_profile.py --filters 32 --num-blocks 3 --batch-size 128 \\
        --threads 1,2 --output runs/training_profile_nb3.json
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_da.analysis.resnet import PeriodicConv1D  # noqa: E402
from keras_da.presets import PRESETS, get_preset  # noqa: E402
from keras_da.training.run import build_learned_filter, make_optimizer  # noqa: E402

from arguments import int_list, positive_int  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lorenz96", choices=sorted(PRESETS))
    parser.add_argument("--filters", type=positive_int, default=None, help="Nf (default: preset)")
    parser.add_argument("--num-blocks", type=positive_int, default=None, help="Nb (default: preset)")
    parser.add_argument("--convs-per-block", type=positive_int, default=None, help="Nsb (default: preset)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="B (default: preset)")
    parser.add_argument("--window-length", type=positive_int, default=None, help="L (default: preset)")
    parser.add_argument("--steps", type=positive_int, default=30, help="timed training steps per call")
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed calls; the median is kept")
    parser.add_argument("--steps-per-execution", type=positive_int, default=10,
                        help="steps per call into the compiled function in the steps_per_execution rows")
    parser.add_argument("--matmul-sizes", type=int_list, default=[1024, 2048, 4096],
                        help="sides of the square float32 matmuls timed")
    parser.add_argument("--threads", type=int_list, default=None,
                        help="intra-op thread counts to compare (default: TensorFlow's choice only)")
    parser.add_argument("--intra-op", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--steps-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser.parse_args(argv)


def configured_preset(args):
    preset = get_preset(args.preset)
    for key, section, name in (
        ("filters", "network", "filters"),
        ("num_blocks", "network", "num_blocks"),
        ("convs_per_block", "network", "convs_per_block"),
        ("batch_size", "training", "batch_size"),
        ("window_length", "training", "window_length"),
    ):
        value = getattr(args, key)
        if value is not None:
            preset[section][name] = value
    training = preset["training"]
    training["pool_size"] = 4 * training["batch_size"]
    preset["spin_up_cycles"] = 200
    return preset


def median_seconds(function, repeats):
    """Call `function` once untimed, then `repeats` times; return the median duration."""
    function()
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        durations.append(time.perf_counter() - start)
    return float(np.median(durations))


def matmul_rates(sizes, repeats):
    rates = {}
    for size in sizes:
        a = tf.random.normal((size, size))
        b = tf.random.normal((size, size))
        calls = max(1, int(2e10 // (2 * size**3)))
        for jit in (False, True):
            product = tf.function(lambda a, b: tf.matmul(a, b), jit_compile=jit)

            def run():
                for _ in range(calls):
                    result = product(a, b)
                result.numpy()

            seconds = median_seconds(run, repeats) / calls
            rates[f"{size} {'xla' if jit else 'graph'}"] = 2 * size**3 / seconds / 1e9
    return rates


def convolution_flops(model):
    """Return the multiply-add FLOPs of the periodic convolutions in one training step."""
    training = model.batch_size * model.ensemble_size * model.state_dim * model.window_length
    per_point = 0
    for layer in model.analysis._flatten_layers(include_self=False):
        if isinstance(layer, PeriodicConv1D):
            kernel = layer.conv.kernel
            width, inputs, outputs = kernel.shape
            per_point += 2 * width * inputs * outputs
    return 3 * per_point * training


def build(preset, jit_compile, steps_per_execution=1):
    keras.utils.set_random_seed(preset["training"]["seed"])
    model = build_learned_filter(preset)
    model.compile(
        optimizer=make_optimizer(preset["training"]), jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


def step_seconds(model, steps, repeats):
    return median_seconds(lambda: model.fit(steps_per_epoch=steps, epochs=1, verbose=0), repeats) / steps


def time_steps(preset, args):
    """Return {mode: seconds per step} for graph mode and XLA, with and without steps_per_execution."""
    modes = {
        "graph": (False, 1),
        "xla": (True, 1),
        f"xla, steps_per_execution {args.steps_per_execution}": (True, args.steps_per_execution),
    }
    steps = -(-args.steps // args.steps_per_execution) * args.steps_per_execution
    return {
        name: step_seconds(build(preset, jit, per_call), steps, args.repeats)
        for name, (jit, per_call) in modes.items()
    }


def time_parts(preset, args):
    """Time the parts of the XLA training step on their own, with the model's own methods."""
    model = build(preset, True)
    model.fit(steps_per_epoch=1, epochs=1, verbose=0)
    b, length = model.batch_size, model.window_length
    truth0 = tf.gather(model.pool_truth, tf.range(b))
    ensemble0 = tf.gather(model.pool_ensemble, tf.range(b))
    truths, observations = model.generate_window(truth0)
    variables = model.trainable_variables
    analysis, dynamics = model.analysis, model.dynamics
    shape = (b, model.ensemble_size, model.state_dim)

    generate = tf.function(lambda t: model.generate_window(t), jit_compile=True)
    window = tf.function(model.window_gradients, jit_compile=True)

    @tf.function(jit_compile=True)
    def network(forecast, observations):
        with tf.GradientTape() as tape:
            tape.watch(forecast)
            total = 0.0
            state = forecast
            for k in range(length):
                state = analysis(state, observations[:, k])
                total += tf.reduce_sum(tf.square(state))
        return tape.gradient(total, [forecast, *analysis.trainable_variables])

    @tf.function(jit_compile=True)
    def propagate(states):
        with tf.GradientTape() as tape:
            tape.watch(states)
            state, total = states, 0.0
            for _ in range(length):
                state = dynamics(state)
                total += tf.reduce_sum(tf.square(state))
        return tape.gradient(total, states)

    gradients = [tf.random.normal(v.shape) * 1e-6 for v in variables]
    optimizer = make_optimizer(preset["training"])
    optimizer.build(variables)
    apply = tf.function(lambda g: optimizer.apply(g, variables), jit_compile=True)
    forecast = tf.reshape(ensemble0, shape)
    states = tf.reshape(ensemble0, (-1, model.state_dim))

    def timed(function, *inputs):
        def run():
            for _ in range(args.steps):
                result = function(*inputs)
            tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, result)

        return median_seconds(run, args.repeats) / args.steps

    return {
        "data generation": timed(generate, truth0),
        "window with gradients": timed(window, observations, ensemble0, truths),
        "  network alone": timed(network, forecast, observations),
        "  dynamics alone": timed(propagate, states),
        "optimizer update": timed(apply, gradients),
    }


def subprocess_steps(args, threads):
    """Rerun the step timing in a fresh process with `threads` intra-op threads."""
    command = [sys.executable, os.path.abspath(__file__), "--steps-only", "--intra-op", str(threads)]
    for key in ("preset", "filters", "num_blocks", "convs_per_block", "batch_size", "window_length",
                "steps", "repeats", "steps_per_execution"):
        value = getattr(args, key)
        if value is not None:
            command += [f"--{key.replace('_', '-')}", str(value)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode:
        raise RuntimeError(f"The timing subprocess with {threads} threads failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv=None):
    args = parse_args(argv)
    if args.intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op)
    preset = configured_preset(args)
    if args.steps_only:
        print(json.dumps(time_steps(preset, args)))
        return 0

    print(f"Network {preset['network']}, B {preset['training']['batch_size']}, "
          f"L {preset['training']['window_length']}", flush=True)
    rates = matmul_rates(args.matmul_sizes, args.repeats)
    reference = max(rates.values())
    flops = convolution_flops(build(preset, False))
    steps = time_steps(preset, args)
    parts = time_parts(preset, args)
    full = steps["xla"]
    accounted = sum(v for k, v in parts.items() if not k.startswith("  "))
    parts["rest of the step"] = full - accounted
    threads = {}
    for count in args.threads or []:
        threads[count] = subprocess_steps(args, count)

    def row(name, seconds):
        rate = flops / seconds / 1e9
        return (f"| {name} | {seconds * 1e3:.1f} | {preset['training']['batch_size'] / seconds:.0f} | "
                f"{rate:.1f} | {rate / reference:.0%} |")

    lines = [f"Float32 matmul rate (GFLOP/s): " + ", ".join(f"{k}: {v:.1f}" for k, v in rates.items()),
             f"Reference rate: {reference:.1f} GFLOP/s. Convolution work per step: {flops / 1e9:.2f} GFLOP.",
             "", "| mode | ms per step | trajectory windows per s | convolution GFLOP/s | of matmul rate |",
             "|---|---|---|---|---|"]
    lines += [row(name, seconds) for name, seconds in steps.items()]
    for count, timings in threads.items():
        lines += [row(f"{name}, {count} intra-op thread(s)", seconds) for name, seconds in timings.items()]
    lines += ["", "| part of the XLA step | ms | share of the step |", "|---|---|---|"]
    lines += [f"| {name} | {seconds * 1e3:.1f} | {seconds / full:.0%} |" for name, seconds in parts.items()]
    print("\n".join(lines))
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as stream:
            json.dump({
                "args": vars(args),
                "network": preset["network"],
                "training": preset["training"],
                "matmul_gflops": rates,
                "reference_gflops": reference,
                "convolution_gflop_per_step": flops / 1e9,
                "seconds_per_step": steps,
                "seconds_per_step_by_threads": threads,
                "parts_seconds": parts,
                "table": "\n".join(lines),
                "machine": {"platform": platform.platform(), "processor": platform.processor(),
                            "cpus": os.cpu_count(), "tensorflow": tf.__version__},
                "date": time.strftime("%Y-%m-%d %H:%M"),
            }, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
