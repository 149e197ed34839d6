"""`keras-da evaluate MODEL`: score a trained filter against the classical filters."""

import logging
import os

from keras_da.presets import PRESETS

logger = logging.getLogger(__name__)


def register(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="filter a fresh twin experiment with a trained model, 3D-Var and the free run",
        description="Filter a long fresh twin experiment with the trained a_θ, a tuned 3D-Var "
        "and the free run on the same truth and observations, and report the time-averaged "
        "analysis RMSE (mean over runs, with its standard deviation and standard error).",
    )
    parser.add_argument(
        "model", nargs="?", default=None,
        help="path of a trained model (.keras) written by `keras-da train`",
    )
    parser.add_argument(
        "--pretrained",
        default=None,
        metavar="NAME",
        help="evaluate a filter shipped with keras_da instead of MODEL, with the preset it was "
        "trained on (names: keras_da.pretrained.available())",
    )
    parser.add_argument(
        "--preset",
        default=None,
        choices=sorted(PRESETS),
        help="preset whose evaluation settings are used (default: the preset stored beside the "
        "model in preset.json, else lorenz96)",
    )
    parser.add_argument(
        "--output", default=None,
        help="directory for results.json and figures (default: MODEL's directory /evaluation, "
        "or runs/pretrained/NAME with --pretrained)",
    )
    parser.add_argument("--num-runs", type=int, default=None, help="independent runs filtered together (default: preset, 8)")
    parser.add_argument("--num-cycles", type=int, default=None, help="cycles scored after the burn-in (default: preset, 10000)")
    parser.add_argument("--burn-in", type=int, default=None, help="cycles filtered before scoring starts (default: preset, 1000)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the truth, observations and first ensembles")
    parser.add_argument(
        "--three-dvar-stds",
        type=lambda text: [float(v) for v in text.split(",")],
        default=None,
        help="comma-separated σ_b values of the 3D-Var sweep, B = σ_b² I (default: preset)",
    )
    parser.add_argument(
        "--state-dim",
        type=int,
        default=None,
        help="Nx of the evaluation grid, if different from the training grid (transfer across "
        "dimension; default: the model's Nx)",
    )
    parser.add_argument("--no-plots", action="store_true", help="write results.json only")
    parser.set_defaults(run=run_evaluate)


def run_evaluate(args):
    from keras_da.evaluation_report import evaluate_model_file

    if (args.model is None) == (args.pretrained is None):
        usage = "Give either MODEL (a .keras file written by `keras-da train`) or --pretrained NAME"
        raise ValueError(f"{usage}." if args.model is None else f"{usage}, not both.")
    preset = None
    if args.pretrained is not None:
        from keras_da import pretrained

        model_path = pretrained.model_path(args.pretrained)
        if args.preset is None:
            preset = pretrained.info(args.pretrained)["preset"]
        output = args.output or os.path.join("runs", "pretrained", args.pretrained)
    else:
        model_path = args.model
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"No model file at {model_path!r}. Train one with `keras-da train`.")
        output = args.output or os.path.join(os.path.dirname(os.path.abspath(model_path)), "evaluation")
    overrides = {
        "num_runs": args.num_runs,
        "num_cycles": args.num_cycles,
        "burn_in": args.burn_in,
        "seed": args.seed,
        "three_dvar_stds": args.three_dvar_stds,
    }
    report = evaluate_model_file(
        model_path,
        output,
        preset_name=args.preset,
        preset=preset,
        overrides=overrides,
        plots=not args.no_plots,
        state_dim=args.state_dim,
    )
    print(report["table"])
    print(f"Results written to {os.path.join(output, 'results.json')}")
