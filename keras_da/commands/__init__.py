"""Subcommands of the `keras-da` command line, one module each (see `keras_da.cli`)."""
