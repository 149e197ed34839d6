"""`keras-da diagnose MODEL`: bias, implied covariance, distances, spectra and sensitivity of a_θ."""

import dataclasses
import logging
import os

logger = logging.getLogger(__name__)

# The defaults live in one place, `DiagnosticSettings`; the parser only repeats them in --help.
# Entries: (flag, settings field, type, help text with the unit).
OPTIONS = (
    ("--num-cycles", "num_cycles", int, "cycles diagnosed after the burn-in, one forecast state each"),
    ("--burn-in", "burn_in", int, "cycles filtered before the diagnostics start"),
    ("--spin-up-cycles", "spin_up_cycles", int, "cycles integrated from random states to reach the attractor"),
    ("--num-samples", "num_samples", int, "Np, sampled innovations per state for the least-squares gain (must exceed Ny)"),
    ("--gain-states", "gain_states", int, "number of states, evenly spaced in time, where the least-squares gain is estimated"),
    ("--sensitivity-states", "sensitivity_states", int, "number of states, evenly spaced in time, where dPᵃ/dx is computed (the costliest diagnostic)"),
    ("--innovation-scale", "innovation_scale", float, "standard deviation of the sampled innovations, in units of the observation error standard deviation"),
    ("--reference-std", "reference_std", float, "σ of the static reference covariance σ² I, in state units (0.40 is the aRMSE of a tuned 3D-Var on Lorenz 96)"),
    ("--enkf-size", "enkf_size", int, "members of the reference ensemble filter"),
    ("--enkf-inflation", "enkf_inflation", float, "multiplicative inflation factor on the reference filter's forecast anomalies (not used by enkf_n)"),
    ("--initial-spread", "initial_spread", float, "standard deviation of the first ensembles around the truth, in state units"),
    ("--seed", "seed", int, "seed of the truth, observations, first ensembles and sampled innovations"),
)


def register(subparsers):
    from keras_da.diagnostics.report import ENSEMBLE_METHODS, DiagnosticSettings

    defaults = DiagnosticSettings()
    parser = subparsers.add_parser(
        "diagnose",
        help="diagnose a trained a_θ: bias, implied covariance, distances to an EnKF, sensitivity",
        description="Filter a fresh twin experiment with a trained a_θ and a reference EnKF on "
        "the same observations, then compute the bias of a_θ at zero innovation, the analysis "
        "error covariance Pᵃ(x) it implies (by least squares and by differentiation), "
        "Bures–Wasserstein distances to the EnKF's Pᵃ and to σ² I, eigenspectra and the "
        "translation-averaged sensitivity dPᵃ/dx. Writes one JSON file and one PNG figure per "
        "diagnostic, summary.json, and prints a table next to the published values.",
    )
    parser.add_argument("model", help="path of a trained model (.keras) written by `keras-da train`")
    parser.add_argument(
        "--output",
        default=None,
        help="directory for the JSON files and figures (default: MODEL's directory /diagnostics)",
    )
    for flag, field, kind, text in OPTIONS:
        default = getattr(defaults, field)
        parser.add_argument(flag, type=kind, default=default, help=f"{text} (default {default})")
    parser.add_argument(
        "--enkf-method",
        default=defaults.enkf_method,
        choices=ENSEMBLE_METHODS,
        help=f"reference ensemble filter whose analysis ensemble gives Pᵃ (default {defaults.enkf_method})",
    )
    parser.add_argument("--no-plots", action="store_true", help="write the JSON files only")
    parser.set_defaults(run=run_diagnose)


def run_diagnose(args):
    from keras_da.diagnostics.report import DiagnosticSettings, diagnose_model_file

    values = {field: getattr(args, field) for _, field, _, _ in OPTIONS}
    settings = DiagnosticSettings(enkf_method=args.enkf_method, **values)
    output = args.output or os.path.join(os.path.dirname(os.path.abspath(args.model)), "diagnostics")
    logger.info("Diagnosing %s with %s", args.model, dataclasses.asdict(settings))
    summary = diagnose_model_file(args.model, output, settings, make_plots=not args.no_plots)
    print(summary["table"])
    print(f"Results written to {output}")
