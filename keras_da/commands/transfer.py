"""`keras-da transfer MODEL`: evaluate one trained a_θ on Lorenz 96 grids of several sizes."""

import json
import logging
import os

logger = logging.getLogger(__name__)


def register(subparsers):
    parser = subparsers.add_parser(
        "transfer",
        help="evaluate a trained a_θ unchanged on grids of other sizes Nx",
        description="Transfer across dimension: the periodic convolutions of a_θ apply to any "
        "Nx, so the weights trained at one Nx are evaluated at each requested Nx, beside a 3D-Var "
        "tuned at that Nx, on the same truth and observations.",
    )
    parser.add_argument("model", help="path of a trained model (.keras)")
    parser.add_argument(
        "--state-dims",
        default="20,40,80,160",
        type=lambda text: [int(v) for v in text.split(",")],
        help="comma-separated grid sizes Nx (default 20,40,80,160)",
    )
    parser.add_argument("--output", default=None, help="directory for transfer.json and transfer.png (default: MODEL's directory /transfer)")
    parser.add_argument("--num-runs", type=int, default=None, help="independent runs per Nx (default: preset)")
    parser.add_argument("--num-cycles", type=int, default=None, help="scored cycles per run (default: preset)")
    parser.add_argument("--burn-in", type=int, default=None, help="burn-in cycles per run (default: preset)")
    parser.set_defaults(run=run_transfer)


def run_transfer(args):
    from keras_da.evaluation_report import evaluate_model_file

    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"No model file at {args.model!r}. Train one with `keras-da train`.")
    output = args.output or os.path.join(os.path.dirname(os.path.abspath(args.model)), "transfer")
    overrides = {"num_runs": args.num_runs, "num_cycles": args.num_cycles, "burn_in": args.burn_in}
    rows = {}
    for state_dim in args.state_dims:
        logger.info("Evaluating at Nx=%d.", state_dim)
        report = evaluate_model_file(
            args.model, os.path.join(output, f"nx{state_dim}"), overrides=overrides,
            plots=False, state_dim=state_dim,
        )
        rows[state_dim] = {name: r["armse"] for name, r in report["results"].items()}
        rows[state_dim]["trained_state_dim"] = report["trained_state_dim"]
    with open(os.path.join(output, "transfer.json"), "w") as stream:
        json.dump(rows, stream, indent=2)
    plot_transfer(rows, os.path.join(output, "transfer.png"))
    print(f"{'Nx':>5}{'a_theta':>10}{'3dvar':>10}{'free_run':>10}")
    for state_dim, row in rows.items():
        print(f"{state_dim:>5}{row['a_theta']:>10.4f}{row['3dvar']:>10.4f}{row['free_run']:>10.4f}")
    print(f"Results written to {output}")


def plot_transfer(rows, path):
    from keras_da.plotting import plt

    dims = sorted(rows)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, style in (("a_theta", "o-"), ("3dvar", "s--")):
        ax.plot(dims, [rows[d][name] for d in dims], style, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.set_xlabel("Nx")
    ax.set_ylabel("aRMSE")
    trained = rows[dims[0]]["trained_state_dim"]
    ax.set_title(f"a_θ trained at Nx = {trained}, applied at other Nx")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
