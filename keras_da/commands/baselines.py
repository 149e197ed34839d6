"""`keras-da baselines`: run classical filters on one twin experiment, with tuning sweeps."""

import logging
import os

from keras_da.presets import DEFAULT_PRESET, PRESETS

logger = logging.getLogger(__name__)

METHOD_NAMES = ("enkf", "etkf", "enkf_n", "3dvar", "oi", "free_run")


def parse_assignments(text):
    """Parse `method=value,method=value` into a dict of method name to string value."""
    pairs = {}
    for item in filter(None, text.split(",")):
        if "=" not in item:
            raise ValueError(f"Expected METHOD=VALUE, received {item!r}.")
        method, value = item.split("=", 1)
        pairs[method.strip()] = value.strip()
    return pairs


def register(subparsers):
    parser = subparsers.add_parser(
        "baselines",
        help="run classical filters (EnKF, ETKF, EnKF-N, 3D-Var, OI, free run) on one twin experiment",
        description="Run any list of classical filters on the same truth and observations. With "
        "--sweep, each method's tuning parameter (inflation for the EnKF and ETKF, σ_b for "
        "3D-Var, the scale of a climatological B for OI) is swept on a shorter separate run and "
        "the best value is kept for the scored run.",
    )
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS), help="twin experiment (default lorenz96)")
    parser.add_argument(
        "--methods",
        default="etkf,enkf_n,3dvar,free_run",
        help=f"comma-separated methods among {', '.join(METHOD_NAMES)} (default etkf,enkf_n,3dvar,free_run)",
    )
    parser.add_argument(
        "--ensemble-sizes",
        default="",
        help="METHOD=Ne pairs, e.g. etkf=20,enkf_n=40 (default: the preset's tuned setting, else 20 for ensemble filters, 1 otherwise)",
    )
    parser.add_argument(
        "--settings",
        default="",
        help="METHOD=VALUE pairs fixing each method's tuning parameter without a sweep, e.g. etkf=1.02,3dvar=0.5",
    )
    parser.add_argument("--sweep", action="store_true", help="tune each method's parameter over its default grid first")
    parser.add_argument("--output", default=None, help="directory for results.json and figures (default runs/baselines_PRESET)")
    parser.add_argument("--num-runs", type=int, default=None, help="independent runs (default: preset)")
    parser.add_argument("--num-cycles", type=int, default=None, help="scored cycles per run (default: preset)")
    parser.add_argument("--burn-in", type=int, default=None, help="burn-in cycles per run (default: preset)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the truth, observations and first ensembles")
    parser.add_argument("--float64", action="store_true", help="run the filters in float64")
    parser.set_defaults(run=run_baselines)


def run_baselines(args):
    from keras_da.baselines_report import run_baseline_report
    from keras_da.presets import get_preset

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHOD_NAMES))
    if unknown:
        raise ValueError(f"Unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHOD_NAMES)}.")
    sizes = {k: int(v) for k, v in parse_assignments(args.ensemble_sizes).items()}
    settings = {k: float(v) for k, v in parse_assignments(args.settings).items()}
    preset = get_preset(args.preset)
    for key in ("num_runs", "num_cycles", "burn_in", "seed"):
        value = getattr(args, key)
        if value is not None:
            preset["evaluation"][key] = value
    output = args.output or os.path.join("runs", f"baselines_{preset['name']}")
    report = run_baseline_report(
        preset, methods, output, ensemble_sizes=sizes, settings=settings, sweep=args.sweep,
        dtype="float64" if args.float64 else "float32",
    )
    print(report["table"])
    print(f"Results written to {os.path.join(output, 'results.json')}")
