"""Plot the learning curve of a run trained with `keras-da train --validate-every EPOCHS`.

The curve (validation aRMSE against training wall time and against analysis cycles trained on)
is read from RUN_DIR/history.csv. Reference scores are drawn as horizontal lines.

Usage:
    python benchmarks/learning_curve.py runs/accurate --output docs/figures/learning_curve.png \\
        --reference "3D-Var=0.4023" --reference "ETKF Ne 20=0.1910"
"""

import argparse
import os
import sys

from keras_da.plotting import plot_learning_curve
from keras_da.training.validation import read_learning_curve


def reference(text):
    label, _, value = text.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if not label or number is None:
        raise argparse.ArgumentTypeError(f"expected LABEL=VALUE, received {text!r}")
    return label, number


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="output directory of `keras-da train`")
    parser.add_argument("--output", required=True, help="image file to write")
    parser.add_argument("--reference", type=reference, action="append", default=[],
                        help="LABEL=aRMSE drawn as a horizontal line (repeatable)")
    parser.add_argument("--title", default="a_θ learning curve, Lorenz 96 (Nx 40, H = I, R = I)")
    args = parser.parse_args(argv)
    history = os.path.join(args.run_dir, "history.csv")
    if not os.path.isfile(history):
        parser.error(f"{history} not found: RUN_DIR must be the --output of `keras-da train`.")
    curve = read_learning_curve(history)
    if not curve:
        parser.error(f"{history} has no scored epoch: train with `keras-da train --validate-every EPOCHS`.")
    plot_learning_curve(curve, args.output, references=dict(args.reference), title=args.title)
    best = min(curve, key=lambda row: row["val_armse"])
    print(f"{len(curve)} scored epochs; best validation aRMSE {best['val_armse']:.4f} at epoch "
          f"{best['epoch']} ({best['train_seconds'] / 3600:.2f} h). Figure: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
