"""The `keras-da` command line.

Each subcommand lives in a module of `keras_da.commands` that defines `register(subparsers)`
(adding its parser and `set_defaults(run=...)`) and the function it runs.
"""

import argparse
import importlib
import logging
import os
import sys

# Modules of keras_da.commands, in the order their subcommands are listed in --help.
COMMAND_MODULES = ("train", "evaluate", "baselines", "transfer", "diagnose", "export")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-da",
        description="Learned sequential data assimilation with Keras: train a learned analysis "
        "through the forecast-analysis cycle and compare it with classical filters.",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="verbosity of keras_da's log messages (default INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"keras_da.commands.{name}").register(subparsers)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("MPLBACKEND", "Agg")  # figures are written to files, never shown
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError) as error:
        print(f"keras-da {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
