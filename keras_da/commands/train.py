"""`keras-da train`: train a learned analysis through the cycle on a preset's twin experiment."""

import argparse
import json
import logging
import os
import time

from keras_da.presets import DEFAULT_PRESET, PRESETS

logger = logging.getLogger(__name__)

# Options that override a preset's "training" and "network" sections: (flag, section, key, type, help).
OVERRIDES = (
    ("--steps", "training", "steps", int, "total training steps (windows of B trajectories)"),
    ("--steps-per-epoch", "training", "steps_per_epoch", int, "steps between progress reports and checkpoints"),
    ("--batch-size", "training", "batch_size", int, "B, trajectories per training step"),
    ("--pool-size", "training", "pool_size", int, "Nr, trajectories in the online training pool"),
    ("--window-length", "training", "window_length", int, "L, cycles unrolled per step (truncated BPTT length)"),
    ("--ensemble-size", "training", "ensemble_size", int, "Ne, members propagated per trajectory"),
    ("--learning-rate", "training", "learning_rate", float, "initial Adam learning rate"),
    ("--final-learning-rate", "training", "final_learning_rate", float, "learning rate at the end of the cosine decay"),
    ("--seed", "training", "seed", int, "seed of the pool, the observation noise and the initial weights"),
    ("--loss", "training", "loss", str, "training loss: supervised (needs the truth) or observation (observations only)"),
    ("--initial-weights", "training", "initial_weights", str, "model.keras of an earlier run whose analysis weights this run starts from (a warm start with a fresh optimizer and pool)"),
    ("--filters", "network", "filters", int, "Nf, channels of the hidden convolutions"),
    ("--num-blocks", "network", "num_blocks", int, "Nb, residual blocks"),
    ("--convs-per-block", "network", "convs_per_block", int, "Nsb, convolutions per residual block"),
    ("--kernel-size", "network", "kernel_size", int, "f, odd kernel width in grid points"),
)


def register(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a learned analysis a_θ through the forecast-analysis cycle",
        description="Train the residual CNN analysis a_θ online through the cycle (truncated "
        "backpropagation through time) on a preset's twin experiment and save it as MODEL.keras.",
    )
    parser.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        choices=sorted(PRESETS),
        help=f"named experiment setup (default {DEFAULT_PRESET}: Lorenz 96, Nx 40, F 8, "
        "dt 0.05, H = I, R = I)",
    )
    parser.add_argument(
        "--output",
        default=None,
        help="directory for model.keras, preset.json, history.json and checkpoints "
        "(default runs/PRESET)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from OUTPUT/backup (weights, optimizer, pool, epoch)",
    )
    parser.add_argument(
        "--strategy",
        default="default",
        choices=("default", "mirrored", "multi-worker"),
        help="data parallelism: default (one device), mirrored (every local GPU), multi-worker "
        "(every worker listed in the TF_CONFIG environment variable; run the same command on "
        "each worker with a shared OUTPUT). The batch size must be a multiple of the number of "
        "replicas (default: default)",
    )
    parser.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compile the train step with XLA, which takes longer before the first step and "
        "then trains faster; --no-jit-compile runs it in graph mode",
    )
    parser.add_argument(
        "--mixed-precision",
        default="none",
        choices=("none", "bfloat16", "float16"),
        help="compute dtype of the analysis network; the state, dynamics and loss stay float32 "
        "(default: none, float32 everywhere)",
    )
    parser.add_argument(
        "--validate-every",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="score the filter every EPOCHS epochs on a fixed twin experiment and record the "
        "learning curve (val_armse, train_seconds, cycles_seen) in OUTPUT/history.csv "
        "(default: 0, off)",
    )
    parser.add_argument("--validation-runs", type=int, default=8, help="runs of the learning-curve twin experiment (default: 8)")
    parser.add_argument(
        "--validation-cycles",
        type=int,
        default=1500,
        help="cycles per learning-curve run, the first third (at most 500) left out (default: 1500)",
    )
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        default=1,
        help="training steps per call into the compiled train function; must divide the "
        "steps per epoch (default: 1)",
    )
    parser.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs to OUTPUT/logs")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch")
    for flag, _, _, kind, text in OVERRIDES:
        parser.add_argument(flag, type=kind, default=None, help=f"{text} (default: from the preset)")
    parser.set_defaults(run=run_train)


def apply_overrides(preset, args):
    for flag, section, key, _, _ in OVERRIDES:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            preset[section][key] = value
    return preset


def run_train(args):
    from keras_da.presets import get_preset
    from keras_da.training.distribute import is_chief
    from keras_da.training.run import train_from_preset

    preset = apply_overrides(get_preset(args.preset), args)
    output = args.output or os.path.join("runs", preset["name"])
    backup = os.path.join(output, "backup")
    if os.path.isdir(backup) and not args.resume:
        raise ValueError(
            f"{backup} contains a checkpoint of an earlier run. Pass --resume to continue it, or "
            "choose another --output (or delete that directory) to start afresh."
        )
    resumed = args.resume and os.path.isfile(os.path.join(backup, "checkpoint.json"))
    start = time.perf_counter()
    model_path = train_from_preset(
        preset,
        output,
        tensorboard=args.tensorboard,
        verbose=args.verbose,
        strategy=args.strategy,
        jit_compile=args.jit_compile,
        steps_per_execution=args.steps_per_execution,
        mixed_precision=args.mixed_precision,
        validate_every=args.validate_every,
        validation_runs=args.validation_runs,
        validation_cycles=args.validation_cycles,
    )
    seconds = time.perf_counter() - start
    if not is_chief():
        return
    with open(os.path.join(output, "training_time.json"), "w") as stream:
        # wall_seconds counts this process only. For a resumed run, the train_seconds column of
        # history.csv also covers the epochs before the checkpoint if they were validated.
        json.dump({"wall_seconds": seconds, "resumed": resumed}, stream)
    if args.validate_every:
        from keras_da import plotting
        from keras_da.training.validation import read_learning_curve

        figure = os.path.join(output, "learning_curve.png")
        curve = read_learning_curve(os.path.join(output, "history.csv"))
        if curve:
            plotting.plot_learning_curve(curve, figure, title=f"a_θ, preset {preset['name']}")
            print(f"Learning curve: {figure}")
        else:
            logger.warning("No epoch was scored, so %s was not drawn.", figure)
    print(f"Saved the trained filter to {model_path} ({seconds / 60:.1f} min).")
    print(f"Evaluate it with: keras-da evaluate {model_path}")
