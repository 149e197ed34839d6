"""Rerun the published comparison of analyses on Lorenz 96 at a reduced, CPU-sized scale.

Trains a_θ at two widths, the linear a_θ and the innovation-only â_θ with the same schedule,
then scores them with 3D-Var (σ_b swept) and, when requested, an ETKF on one shared twin
experiment. Writes `comparison.json` and `comparison.md` (a table with the published values) to
`--output`.

Example (the scale used for docs/experiments.md):

    python benchmarks/paper_comparison.py --output runs/comparison --steps 2000

Published values: M. Bocquet et al., Chaos 34 (2024), 091104 (Nf 40 and 100, 2^18 trajectories).
"""

import argparse
import json
import logging
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from keras_da.baselines import ThreeDVar  # noqa: E402
from keras_da.evaluation import evaluate_methods, make_twin_experiment  # noqa: E402
from keras_da.evaluation_report import tune_three_dvar  # noqa: E402
from keras_da.presets import get_preset  # noqa: E402
from keras_da.training.run import train_from_preset  # noqa: E402

PUBLISHED = {
    "a_theta_wide": 0.185,
    "a_theta": 0.191,
    "linear": 0.384,
    "innovation_only": 0.382,
    "3dvar": 0.40,
    "etkf": 0.179,
}

VARIANTS = {
    # name: (architecture, filters)
    "a_theta": ("resnet", 32),
    "a_theta_wide": ("resnet", 64),
    "linear": ("linear", 32),
    "innovation_only": ("innovation_only", 32),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--steps", type=int, default=2000, help="training steps per variant")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variants to train")
    parser.add_argument("--num-runs", type=int, default=8, help="independent evaluation runs")
    parser.add_argument("--num-cycles", type=int, default=10000, help="scored cycles per run")
    parser.add_argument("--burn-in", type=int, default=1000, help="burn-in cycles per run")
    parser.add_argument("--etkf-members", type=int, default=0, help="ETKF ensemble size (0: no ETKF row)")
    parser.add_argument("--etkf-inflation", type=float, default=1.02, help="ETKF multiplicative inflation")
    return parser.parse_args()


def main():
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.makedirs(args.output, exist_ok=True)
    base = get_preset("lorenz96")
    base["training"]["steps"] = args.steps
    base["training"]["steps_per_epoch"] = min(500, args.steps)
    timings, models = {}, {}
    for name in args.variants.split(","):
        architecture, filters = VARIANTS[name]
        preset = json.loads(json.dumps(base))
        preset["name"] = f"comparison_{name}"
        preset["network"].update({"architecture": architecture, "filters": filters})
        start = time.perf_counter()
        path = train_from_preset(preset, os.path.join(args.output, name), verbose=2)
        timings[name] = time.perf_counter() - start
        models[name] = keras.models.load_model(path)

    reference = next(iter(models.values()))
    dynamics, H = reference.dynamics, reference.observation_operator
    best_std, _ = tune_three_dvar(dynamics, H, base, base["evaluation"]["three_dvar_stds"])
    twin = make_twin_experiment(
        dynamics, H, 40, args.num_runs, args.burn_in + args.num_cycles, base["spin_up_cycles"], seed=2024
    )
    methods = {name: (model.analysis, model.ensemble_size) for name, model in models.items()}
    methods["3dvar"] = (ThreeDVar(H, background_std=best_std), 1)
    if args.etkf_members:
        from keras_da.baselines import build_baseline

        methods["etkf"] = (build_baseline("etkf", H, inflation=args.etkf_inflation), args.etkf_members)
    results = evaluate_methods(methods, dynamics, twin, args.burn_in, keep_series=False)

    rows = ["| analysis | Ne | aRMSE ± std (this run) | published | training time |", "|---|---|---|---|---|"]
    for name, r in results.items():
        train = f"{timings[name] / 60:.1f} min" if name in timings else "—"
        rows.append(
            f"| {name} | {r['ensemble_size']} | {r['armse']:.3f} ± {r['armse_std']:.3f} | "
            f"{PUBLISHED.get(name, '—')} | {train} |"
        )
    table = "\n".join(rows)
    print(table)
    with open(os.path.join(args.output, "comparison.md"), "w") as stream:
        stream.write(table + "\n")
    with open(os.path.join(args.output, "comparison.json"), "w") as stream:
        json.dump(
            {"args": vars(args), "three_dvar_std": best_std, "training_seconds": timings, "results": results,
             "published": PUBLISHED},
            stream, indent=2,
        )


if __name__ == "__main__":
    main()
