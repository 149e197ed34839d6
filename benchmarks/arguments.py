"""Argument types shared by the benchmark scripts, which run as `python benchmarks/SCRIPT.py`."""

import argparse


def int_at_least(minimum):
    """Return an argparse type that accepts integers >= `minimum`."""
    expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, received {text!r}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def int_list(text):
    """Parse comma-separated positive integers, for example "1,5,10"."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, received {text!r}") from None
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, received {text!r}")
    return values
