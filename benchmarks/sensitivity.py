"""Sensitivity studies of a_θ on Lorenz 96 at a reduced, CPU-sized scale.

Each study varies one hyperparameter of the default preset, trains one model per value with the
same schedule and seed, scores every model on one shared twin experiment, and writes a table
(`STUDY.md`, `STUDY.json`) and a figure (`STUDY.png`) to `--output`:

- `pool_size`: number of training trajectories Nr;
- `filters`: hidden channels Nf;
- `depth`: residual blocks × convolutions per block (Nb × Nsb);
- `ensemble_size`: members Ne propagated in training and evaluation.

Example (the reduced scale of docs/experiments.md):

    python benchmarks/sensitivity.py --output runs/sensitivity --steps 1000 --num-runs 4 --num-cycles 3000

Full-scale settings of the published study (Bocquet et al., Chaos 34 (2024), 091104), for a GPU:
Nr from 2^10 to 2^18, Nf from 10 to 100 with Nb = Nsb = 5, Ne from 1 to 20, trained to
convergence (use `--steps 200000 --num-runs 8 --num-cycles 10000` and the `paper` preset values).
"""

import argparse
import json
import logging
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from keras_da.evaluation import evaluate_methods, make_twin_experiment  # noqa: E402
from keras_da.plotting import plt  # noqa: E402
from keras_da.presets import get_preset  # noqa: E402
from keras_da.training.run import train_from_preset  # noqa: E402

from arguments import int_list  # noqa: E402

# study name -> list of (label, {section: {key: value}}) overrides of the preset
STUDIES = {
    "pool_size": [(str(n), {"training": {"pool_size": n}}) for n in (256, 1024, 4096)],
    "filters": [(str(n), {"network": {"filters": n}}) for n in (8, 16, 32)],
    "depth": [
        (f"{nb}x{nsb}", {"network": {"num_blocks": nb, "convs_per_block": nsb}})
        for nb, nsb in ((1, 1), (2, 2), (3, 3))
    ],
    "ensemble_size": [(str(n), {"training": {"ensemble_size": n}}) for n in (1, 5, 10)],
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--studies", default=",".join(STUDIES), help="comma-separated studies to run")
    parser.add_argument("--steps", type=int, default=1000, help="training steps per model")
    parser.add_argument("--num-runs", type=int, default=4, help="independent evaluation runs")
    parser.add_argument("--num-cycles", type=int, default=3000, help="scored cycles per run")
    parser.add_argument("--burn-in", type=int, default=500, help="burn-in cycles per run")
    parser.add_argument("--ensemble-sizes", type=int_list, default=[1, 5, 10],
                        help="Ne values of the ensemble_size study (default 1,5,10)")
    parser.add_argument("--reuse", action="store_true",
                        help="score a value's OUTPUT/STUDY/VALUE/model.keras of an earlier run "
                        "instead of training it again (its training time is then not known)")
    args = parser.parse_args()
    STUDIES["ensemble_size"] = [(str(n), {"training": {"ensemble_size": n}}) for n in args.ensemble_sizes]
    return args


def format_minutes(seconds):
    return "not recorded (earlier run)" if seconds is None else f"{seconds / 60:.1f} min"


def run_study(name, args, twin, trained):
    """Train and score every value of study `name`; `trained` maps configurations to earlier rows.

    The default value of each study is the same configuration, so it is trained once and its
    row reused by the other studies.
    """
    rows = []
    for label, overrides in STUDIES[name]:
        preset = get_preset("lorenz96")
        preset["name"] = f"sensitivity_{name}_{label}"
        preset["training"].update({"steps": args.steps, "steps_per_epoch": min(500, args.steps)})
        for section, values in overrides.items():
            preset[section].update(values)
        key = json.dumps([preset["network"], preset["training"]], sort_keys=True)
        if key in trained:
            rows.append(dict(trained[key], value=label))
            continue
        path = os.path.join(args.output, name, label, "model.keras")
        if args.reuse and os.path.isfile(path):
            logging.info("Scoring the earlier model %s without training it.", path)
            seconds = None
        else:
            start = time.perf_counter()
            path = train_from_preset(preset, os.path.join(args.output, name, label), verbose=2)
            seconds = time.perf_counter() - start
        model = keras.models.load_model(path)
        result = evaluate_methods(
            {label: (model.analysis, model.ensemble_size)}, model.dynamics, twin, args.burn_in,
            keep_series=False,
        )[label]
        rows.append({"value": label, "armse": result["armse"], "armse_std": result["armse_std"],
                     "training_seconds": seconds})
        trained[key] = rows[-1]
    with open(os.path.join(args.output, f"{name}.json"), "w") as stream:
        json.dump({"study": name, "args": vars(args), "rows": rows}, stream, indent=2)
    lines = [f"| {name} | aRMSE ± std over runs | training time |", "|---|---|---|"]
    lines += [f"| {r['value']} | {r['armse']:.3f} ± {r['armse_std']:.3f} | {format_minutes(r['training_seconds'])} |" for r in rows]
    with open(os.path.join(args.output, f"{name}.md"), "w") as stream:
        stream.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.errorbar(range(len(rows)), [r["armse"] for r in rows], yerr=[r["armse_std"] for r in rows], fmt="o-")
    ax.set_xticks(range(len(rows)), [r["value"] for r in rows])
    ax.set_xlabel(name)
    ax.set_ylabel("aRMSE")
    ax.set_title(f"Sensitivity to {name} ({args.steps} steps)")
    fig.tight_layout()
    fig.savefig(os.path.join(args.output, f"{name}.png"), dpi=120)
    plt.close(fig)


def main():
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.makedirs(args.output, exist_ok=True)
    preset = get_preset("lorenz96")
    from keras_da.experiment import build_dynamics, build_observation_operator

    twin = make_twin_experiment(
        build_dynamics(preset["model"]), build_observation_operator(preset["observation"]), 40,
        args.num_runs, args.burn_in + args.num_cycles, preset["spin_up_cycles"], seed=77,
    )
    names = args.studies.split(",")
    unknown = [name for name in names if name not in STUDIES]
    if unknown:
        raise ValueError(f"Unknown studies {unknown}; choose from {', '.join(STUDIES)}.")
    trained = {}
    for name in names:
        run_study(name, args, twin, trained)


if __name__ == "__main__":
    main()
