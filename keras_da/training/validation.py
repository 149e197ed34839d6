"""Learning curves: the analysis RMSE of a filter in training, scored on a fixed twin experiment."""

import csv
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_da.evaluation import initial_ensemble, make_twin_experiment, rmse_series, summarize_rmse
from keras_da.twin import check_positive_int


class ValidationRMSE(keras.callbacks.Callback):
    """Score the filter being trained on a fixed twin experiment every few epochs.

    The twin experiment is drawn once, from `seed`. At the end of every `every`-th epoch, of
    the last one, and of an epoch after which training stops early (`TerminateOnNaN`), the
    callback filters all its runs with the model's current analysis. It adds these entries to
    the epoch's logs, which a CSV logger and `History` record:

    - `val_armse`: time-averaged analysis RMSE after `burn_in` cycles, mean over runs
      (`nan` on epochs that are not scored, `inf` when a run diverged);
    - `val_armse_sem`: its standard error over runs;
    - `train_seconds`: wall time spent training so far, scoring excluded, counted from
      `initial_seconds` (the time of the run this one resumes);
    - `cycles_seen`: analysis cycles trained on so far, window counter x B x L.

    The scoring calls the model's own layers, so it uses the weights of that moment. It runs in
    one `tf.function`, traced once.

    Args:
        dynamics, observation_operator, state_dim: the experiment, as the model was built.
        num_runs: independent runs scored.
        num_cycles: cycles per run, including `burn_in`.
        burn_in: cycles left out of the time average.
        spin_up_cycles: cycles that bring the random initial truths onto the attractor.
        every: score every this many epochs.
        initial_spread: standard deviation of the first forecast around the truth.
        seed: seed of the twin experiment and of the first forecast.
        initial_seconds: training time already spent by an interrupted run this one resumes.
    """

    def __init__(
        self, dynamics, observation_operator, state_dim, num_runs=8, num_cycles=1500, burn_in=500,
        spin_up_cycles=1000, every=1, initial_spread=1.0, seed=2024, initial_seconds=0.0,
    ):
        super().__init__()
        check_positive_int("num_runs", num_runs)
        check_positive_int("num_cycles", num_cycles)
        check_positive_int("every", every)
        check_positive_int("burn_in", burn_in, minimum=0)
        if burn_in >= num_cycles:
            raise ValueError(
                f"`burn_in` ({burn_in}) must be smaller than `num_cycles` ({num_cycles}) so that "
                "some cycles are scored."
            )
        self.every = every
        self.burn_in = burn_in
        self.initial_seconds = float(initial_seconds)
        self.twin = make_twin_experiment(
            dynamics, observation_operator, state_dim, num_runs, num_cycles, spin_up_cycles, seed
        )
        self.initial_spread = initial_spread
        self.seed = seed
        self._filter = None

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self._scoring_seconds = 0.0

    def score(self):
        """Return (mean, standard error) over runs of the time-averaged analysis RMSE."""
        model = self.model
        if self._filter is None:
            self._filter = tf.function(lambda obs, ens: model((obs, ens), training=False))
        ensemble = initial_ensemble(
            self.twin, model.ensemble_size, self.initial_spread, self.seed
        )
        means = self._filter(
            tf.constant(self.twin.observations, tf.float32), tf.constant(ensemble, tf.float32)
        )
        summary = summarize_rmse(rmse_series(np.asarray(means), self.twin.truth), self.burn_in)
        return summary["armse"], summary["armse_stderr"]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        elapsed = time.perf_counter() - self._start - self._scoring_seconds
        logs["train_seconds"] = self.initial_seconds + elapsed
        model = self.model
        logs["cycles_seen"] = float(
            int(model.window_counter.numpy()) * model.batch_size * model.window_length
        )
        last = epoch + 1 == self.params.get("epochs") or getattr(model, "stop_training", False)
        if (epoch + 1) % self.every and not last:
            logs["val_armse"] = logs["val_armse_sem"] = float("nan")
            return
        start = time.perf_counter()
        armse, armse_sem = self.score()
        if not np.isfinite(armse):
            # A diverged run makes the mean nan or inf. Recording inf keeps it apart from the
            # epochs that are not scored, which record nan.
            armse = armse_sem = float("inf")
        logs["val_armse"], logs["val_armse_sem"] = armse, armse_sem
        self._scoring_seconds += time.perf_counter() - start


def read_history_csv(path):
    """Return `(columns, rows)` of a history.csv, `([], [])` when the file does not exist."""
    if not os.path.isfile(path):
        return [], []
    with open(path, newline="") as stream:
        reader = csv.DictReader(stream)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def parse_csv_number(text):
    """Return a history.csv cell as a float, `nan` when it is empty or not a number ("NA")."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def read_learning_curve(history_csv):
    """Return the scored epochs of a run's history.csv as dicts, `[]` when none is scored.

    Each dict has `epoch` (counted from 1), `train_seconds`, `cycles_seen`, `val_armse` and
    `val_armse_sem`. A diverged score is kept, as `inf`. Epochs without a score (`nan`, empty
    or "NA", for example those of a resumed run trained without validation) are left out.
    """
    _, rows = read_history_csv(history_csv)
    curve = []
    for row in rows:
        score = parse_csv_number(row.get("val_armse"))
        if np.isnan(score):
            continue
        curve.append({
            "epoch": int(row["epoch"]) + 1,
            "train_seconds": parse_csv_number(row.get("train_seconds")),
            "cycles_seen": parse_csv_number(row.get("cycles_seen")),
            "val_armse": score,
            "val_armse_sem": parse_csv_number(row.get("val_armse_sem")),
        })
    return curve
