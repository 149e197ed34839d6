"""Package a trained run as a shipped filter: `python -m keras_da.pretrained RUN_DIR --name NAME`.

RUN_DIR is the output directory of `keras-da train` after `keras-da evaluate RUN_DIR/model.keras`
has written `RUN_DIR/evaluation/results.json`. The tool writes `NAME.keras` and `NAME.json` into
the `keras_da/pretrained` folder, or into `--directory`. `NAME.keras` is the analysis network and
dynamics in a `LearnedFilter` whose training pool is cut to one batch, without optimizer state,
checked to filter exactly like the trained model. `NAME.json` is the record, with the score of
the short check evaluation that `tests/test_pretrained.py` repeats.
"""

import argparse
import json
import os
import platform
import re
import sys

import keras
import numpy as np

from keras_da import pretrained
from keras_da.training.run import build_learned_filter, copy_analysis_weights
from keras_da.training.validation import read_learning_curve

# Names of shipped filters: file names without a directory part or a leading dot.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# The short evaluation recorded with every shipped filter and repeated by the test suite.
CHECK = {
    "num_runs": 4,
    "num_cycles": 2000,
    "burn_in": 500,
    "seed": 31337,
    "initial_spread": 1.0,
    "spin_up_cycles": 1000,
}


def slim_copy(model, preset):
    """Return an uncompiled `LearnedFilter` with `model`'s analysis weights and a one-batch pool."""
    slim_preset = json.loads(json.dumps(preset))
    slim_preset["training"]["pool_size"] = slim_preset["training"]["batch_size"]
    slim = build_learned_filter(slim_preset, mixed_precision=model.mixed_precision)
    copy_analysis_weights(model, slim)
    rng = np.random.default_rng(0)
    observations = rng.standard_normal((2, 3, model.state_dim)).astype("float32")
    ensemble = (8.0 + rng.standard_normal((2, model.ensemble_size, model.state_dim))).astype("float32")
    expected = np.asarray(model((observations, ensemble)))
    received = np.asarray(slim((observations, ensemble)))
    if not np.array_equal(expected, received):
        raise RuntimeError(
            "The slim copy filters differently from the trained model (largest difference "
            f"{np.max(np.abs(expected - received)):.3g}); refusing to ship it."
        )
    return slim


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="output directory of `keras-da train`, evaluated")
    parser.add_argument("--name", required=True, help="name of the shipped filter, e.g. lorenz96-ne1")
    parser.add_argument("--command", required=True, help="the exact training command, recorded")
    parser.add_argument("--commit", required=True, help="git commit of the code that trained the model")
    parser.add_argument("--machine", required=True, help="the machine that trained it, in words")
    parser.add_argument(
        "--directory", default=pretrained.DIRECTORY,
        help="folder to write NAME.keras and NAME.json to (default: the package's pretrained folder)",
    )
    return parser.parse_args(argv)


def check_evaluation(evaluation, preset, model):
    """Raise `ValueError` unless results.json scores `model` at its own Nx with its preset."""
    if evaluation.get("state_dim", model.state_dim) != model.state_dim:
        raise ValueError(
            f"evaluation/results.json scores the model at Nx={evaluation['state_dim']}, but it was "
            f"trained at Nx={model.state_dim}. Evaluate it again without --state-dim."
        )
    if evaluation["preset"] != preset["name"]:
        raise ValueError(
            f"evaluation/results.json uses the settings of preset {evaluation['preset']!r}, but "
            f"the run trained preset {preset['name']!r}. Evaluate it again without --preset."
        )


def main(argv=None):
    args = parse_args(argv)
    if not NAME_PATTERN.fullmatch(args.name):
        raise ValueError(
            f"--name must be letters, digits, '.', '_' or '-' and start with a letter or digit, "
            f"received {args.name!r}."
        )
    files = {
        name: os.path.join(args.run_dir, name)
        for name in ("model.keras", "preset.json", "training_time.json", "evaluation/results.json")
    }
    missing = [path for path in files.values() if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(
            f"{', '.join(missing)} not found. Train with `keras-da train --output {args.run_dir}` "
            f"and evaluate with `keras-da evaluate {files['model.keras']}` first."
        )
    with open(files["preset.json"]) as stream:
        preset = json.load(stream)
    with open(files["training_time.json"]) as stream:
        training_time = json.load(stream)
    with open(files["evaluation/results.json"]) as stream:
        evaluation = json.load(stream)

    model = keras.models.load_model(files["model.keras"])
    check_evaluation(evaluation, preset, model)
    curve = read_learning_curve(os.path.join(args.run_dir, "history.csv"))
    if training_time.get("resumed"):
        print(
            "Warning: the run was resumed, so training.wall_seconds counts only its last part. "
            "The train_seconds of its learning curve cover the whole run if every part was "
            "validated.", file=sys.stderr,
        )
    slim = slim_copy(model, preset)
    os.makedirs(args.directory, exist_ok=True)
    target = os.path.join(args.directory, f"{args.name}.keras")
    slim.save(target)
    check = dict(CHECK, spin_up_cycles=preset["spin_up_cycles"])
    score = pretrained.check_score(keras.models.load_model(target, compile=False), check)
    record = {
        "name": args.name,
        "description": (
            f"a_θ (Ne {preset['training']['ensemble_size']}, network {preset['network']}) trained "
            f"on the {preset['name']} twin experiment"
        ),
        "command": args.command,
        "commit": args.commit,
        "training": {
            "wall_seconds": training_time["wall_seconds"],
            "resumed": training_time.get("resumed", False),
            "machine": args.machine,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "learning_curve": curve,
        },
        "preset": preset,
        "evaluation": {
            "settings": evaluation["evaluation"],
            "results": {
                name: {key: result[key] for key in ("armse", "armse_std", "armse_stderr", "ensemble_size")}
                for name, result in evaluation["results"].items()
            },
            "three_dvar_sweep": evaluation["three_dvar_sweep"],
        },
        "check": dict(check, armse=score["armse"], armse_stderr=score["armse_stderr"],
                      per_run=score["per_run"]),
    }
    with open(os.path.join(args.directory, f"{args.name}.json"), "w") as stream:
        json.dump(record, stream, indent=2)
    a_theta = record["evaluation"]["results"]["a_theta"]
    print(
        f"Shipped {args.name}: {os.path.getsize(target) / 1e6:.2f} MB, standard evaluation aRMSE "
        f"{a_theta['armse']:.4f} ± {a_theta['armse_stderr']:.4f} (standard error), check "
        f"evaluation {score['armse']:.4f} ± {score['armse_stderr']:.4f}."
    )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"python -m keras_da.pretrained: error: {error}")
