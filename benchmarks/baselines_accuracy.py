"""Accuracy of the classical filters on the standard Lorenz 96 twin experiment.

Every filter runs on the same truth and observations (the preset's evaluation section: 8 runs
of 10,000 cycles after a spin-up, the first 1,000 cycles left out of the time average). Tuned
methods are run over their whole sweep grid (`SWEEP_PARAMETERS`), and every value is reported,
so the best value is chosen on the same runs it is scored on, as in the published tables.

Usage:
    python benchmarks/baselines_accuracy.py --output runs/baselines_accuracy.json
    python benchmarks/baselines_accuracy.py --methods etkf,enkf_n --num-cycles 2000 --output x.json
"""

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_da.baselines import SWEEP_PARAMETERS, build_baseline, climatological_covariance  # noqa: E402
from keras_da.evaluation import (  # noqa: E402
    make_twin_experiment,
    rmse_series,
    run_filter,
    summarize_rmse,
)
from keras_da.experiment import build_dynamics, build_observation_operator  # noqa: E402
from keras_da.presets import get_preset  # noqa: E402

# (label, registry name, fixed settings, ensemble size, whether to sweep SWEEP_PARAMETERS).
CONFIGURATIONS = (
    ("3dvar", "3dvar", {}, 1, True),
    ("oi (climatological B)", "oi", {}, 1, True),
    ("enkf Ne=20", "enkf", {"seed": 1}, 20, True),
    ("etkf Ne=20", "etkf", {}, 20, True),
    ("enkf_n Ne=20", "enkf_n", {}, 20, False),
    ("enkf_n Ne=40", "enkf_n", {}, 40, False),
    ("enkf_n Ne=20, g=0", "enkf_n", {"count_offset": 0.0}, 20, False),
    ("enkf_n Ne=20, approximate Hessian", "enkf_n", {"rank_one_correction": False}, 20, False),
)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="path of the JSON file to write")
    parser.add_argument("--preset", default="lorenz96", help="experiment preset (default lorenz96)")
    parser.add_argument(
        "--methods",
        default=None,
        help="comma-separated registry names to run (default: every configuration)",
    )
    parser.add_argument("--num-runs", type=int, default=None, help="runs (default: the preset's)")
    parser.add_argument(
        "--num-cycles", type=int, default=None, help="cycles per run (default: the preset's)"
    )
    parser.add_argument(
        "--burn-in", type=int, default=None, help="cycles left out (default: the preset's)"
    )
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "float64"),
        help="floating dtype of the filters (default float32)",
    )
    parser.add_argument(
        "--climatology-samples",
        type=int,
        default=2000,
        help="free-run samples behind the climatological B of `oi` (default 2000)",
    )
    return parser.parse_args(argv)


def machine_description():
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
    }


def run_configuration(label, name, settings, ensemble_size, sweep, context):
    """Run one configuration (over its sweep grid if `sweep`) and return its result rows."""
    grid = [None]
    parameter = None
    if sweep and name in SWEEP_PARAMETERS:
        parameter, grid = SWEEP_PARAMETERS[name]
    rows = []
    for value in grid:
        layer_settings = dict(settings)
        if parameter is not None:
            layer_settings[parameter] = value
        if name == "oi":
            layer_settings["background_covariance"] = context["climatological_covariance"]
        layer = build_baseline(
            name, context["observation_operator"], dtype=context["dtype"], **layer_settings
        )
        start = time.perf_counter()
        means = run_filter(
            context["dynamics"],
            layer,
            context["twin"],
            ensemble_size,
            context["initial_spread"],
            context["seed"],
            dtype=context["dtype"],
        )
        seconds = time.perf_counter() - start
        result = summarize_rmse(rmse_series(means, context["twin"].truth), context["burn_in"])
        row = {
            "label": label,
            "method": name,
            "ensemble_size": ensemble_size,
            "parameter": parameter,
            "value": value,
            "settings": {k: v for k, v in settings.items()},
            "armse": result["armse"],
            "armse_stderr": result["armse_stderr"],
            "per_run": result["per_run"],
            "diverged_runs": result["diverged_runs"],
            "seconds": seconds,
        }
        rows.append(row)
        setting = "" if parameter is None else f"{parameter}={value}"
        print(
            f"{label:36s} {setting:24s} aRMSE {row['armse']:.4f} ± {row['armse_stderr']:.4f}"
            f"  {row['seconds']:6.1f} s",
            flush=True,
        )
    return rows


def best_rows(rows):
    """Return the row with the lowest finite aRMSE for every label."""
    best = {}
    for row in rows:
        if not np.isfinite(row["armse"]) or row["diverged_runs"]:
            continue
        if row["label"] not in best or row["armse"] < best[row["label"]]["armse"]:
            best[row["label"]] = row
    return best


def print_table(best, published):
    print("\nBest setting of every configuration")
    print(f"{'configuration':36s} {'setting':24s} {'aRMSE':>8s} {'stderr':>8s} {'seconds':>8s}")
    for label, row in best.items():
        setting = "" if row["parameter"] is None else f"{row['parameter']}={row['value']}"
        print(
            f"{label:36s} {setting:24s} {row['armse']:8.4f} {row['armse_stderr']:8.4f} "
            f"{row['seconds']:8.1f}"
        )
    print(f"Published ({published.get('source', 'preset')}): "
          + ", ".join(f"{k} {v}" for k, v in published.items() if k != "source"))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    preset = get_preset(args.preset)
    evaluation = preset["evaluation"]
    num_runs = args.num_runs or evaluation["num_runs"]
    num_cycles = args.num_cycles or evaluation["num_cycles"]
    burn_in = args.burn_in if args.burn_in is not None else evaluation["burn_in"]
    state_dim = preset["model"]["state_dim"]
    selected = None if args.methods is None else set(args.methods.split(","))

    dynamics = build_dynamics(preset["model"])
    operator = build_observation_operator(preset["observation"])
    twin = make_twin_experiment(
        dynamics, operator, state_dim, num_runs, num_cycles, preset["spin_up_cycles"],
        evaluation["seed"],
    )
    context = {
        "dynamics": dynamics,
        "observation_operator": operator,
        "twin": twin,
        "burn_in": burn_in,
        "initial_spread": evaluation["initial_spread"],
        "seed": evaluation["seed"],
        "dtype": args.dtype,
    }
    if selected is None or "oi" in selected:
        context["climatological_covariance"] = climatological_covariance(
            dynamics, state_dim, num_samples=args.climatology_samples,
            spin_up=preset["spin_up_cycles"], seed=evaluation["seed"] + 7,
        )

    rows = []
    for label, name, settings, ensemble_size, sweep in CONFIGURATIONS:
        if selected is not None and name not in selected:
            continue
        rows.extend(run_configuration(label, name, settings, ensemble_size, sweep, context))

    best = best_rows(rows)
    print_table(best, preset.get("published", {}))
    wall_seconds = time.perf_counter() - start
    print(f"Wall time: {wall_seconds:.0f} s")
    report = {
        "preset": args.preset,
        "num_runs": num_runs,
        "num_cycles": num_cycles,
        "burn_in": burn_in,
        "dtype": args.dtype,
        "command": " ".join(["python", "benchmarks/baselines_accuracy.py"] + sys.argv[1:]),
        "machine": machine_description(),
        "wall_seconds": wall_seconds,
        "rows": rows,
        "best": best,
        "published": preset.get("published", {}),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
