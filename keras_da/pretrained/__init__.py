"""Trained filters shipped with keras_da, loadable by name.

Each shipped filter is a `LearnedFilter` file `NAME.keras` beside a record `NAME.json`. The
record contains the preset it was trained with, the command and commit that trained it, its
training time and machine, and its score on the standard evaluation (`keras-da evaluate`). It
also contains the score of a short check evaluation that the test suite repeats.

    >>> from keras_da import pretrained
    >>> pretrained.available()
    ['lorenz96-ne1']
    >>> model = pretrained.load("lorenz96-ne1")
    >>> means = model((observations, initial_ensemble))   # filter (runs, T, Nx) observations

The shipped file contains the analysis network and its dynamics, not the training pool or the
optimizer state, so it filters at once but does not resume training: train a new model with
the recorded command for that.
"""

import json
import os

DIRECTORY = os.path.dirname(os.path.abspath(__file__))


def available():
    """Return the names of the shipped filters, sorted."""
    return sorted(
        name[: -len(".json")]
        for name in os.listdir(DIRECTORY)
        if name.endswith(".json") and os.path.isfile(os.path.join(DIRECTORY, name[:-5] + ".keras"))
    )


def _check_name(name):
    names = available()
    if name not in names:
        raise ValueError(
            f"No shipped filter named {name!r}. Available: {', '.join(names) or 'none'} "
            "(see keras_da.pretrained.available())."
        )


def model_path(name):
    """Return the path of the shipped filter `name`'s `.keras` file."""
    _check_name(name)
    return os.path.join(DIRECTORY, f"{name}.keras")


def info(name):
    """Return the record of the shipped filter `name` (preset, command, commit, scores)."""
    _check_name(name)
    with open(os.path.join(DIRECTORY, f"{name}.json")) as stream:
        return json.load(stream)


def load(name):
    """Load the shipped filter `name` as a `LearnedFilter`."""
    import keras

    import keras_da  # noqa: F401  (registers the layers for deserialisation)

    return keras.models.load_model(model_path(name), compile=False)


def check_score(model, check):
    """Score `model` on the short evaluation described by a record's `check` section.

    Args:
        model: a `LearnedFilter`.
        check: dict with `num_runs`, `num_cycles` (after the burn-in), `burn_in`, `seed`,
            `initial_spread` and `spin_up_cycles`.

    Returns:
        The result dict of `keras_da.evaluation.evaluate_methods` for the learned analysis
        (`armse`, `armse_std`, `armse_stderr`, `per_run`, ...).
    """
    from keras_da.evaluation import evaluate_methods, make_twin_experiment

    twin = make_twin_experiment(
        model.dynamics, model.observation_operator, model.state_dim, check["num_runs"],
        check["burn_in"] + check["num_cycles"], check["spin_up_cycles"], seed=check["seed"],
    )
    results = evaluate_methods(
        {"a_theta": (model.analysis, model.ensemble_size)}, model.dynamics, twin,
        check["burn_in"], initial_spread=check["initial_spread"], seed=check["seed"] + 7,
        keep_series=False,
    )
    return results["a_theta"]
