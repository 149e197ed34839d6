"""`keras-da export MODEL DIR`: write a trained filter as a TensorFlow SavedModel."""

import os


def register(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a trained filter as a SavedModel with analysis and cycle functions",
        description="Write the trained filter MODEL (.keras) as a TensorFlow SavedModel in DIR. "
        "Its functions analysis(forecast, observation) and cycle(analysis_ensemble, "
        "observation) take ensembles of shape (batch, Ne, Nx) and observations of shape "
        "(batch, Ny), and run with TensorFlow alone (tf.saved_model.load or TensorFlow "
        "Serving).",
    )
    parser.add_argument("model", help="path of a trained model (.keras) written by `keras-da train`")
    parser.add_argument("directory", metavar="DIR", help="output directory of the SavedModel (overwritten)")
    parser.add_argument(
        "--jit-compile",
        action="store_true",
        help="compile the saved functions with XLA when they run (default: off)",
    )
    parser.set_defaults(run=run_export)


def run_export(args):
    from keras_da.export import export_model_file

    if not os.path.isfile(args.model):
        raise FileNotFoundError(
            f"No model file at {args.model!r}. Train one with `keras-da train`, which writes "
            "OUTPUT/model.keras."
        )
    directory = export_model_file(args.model, args.directory, jit_compile=args.jit_compile)
    print(f"Exported {args.model} to {directory}.")
    print(f"Load it with: tf.saved_model.load({directory!r}).cycle(analysis_ensemble, observation)")
