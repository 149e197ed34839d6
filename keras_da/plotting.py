"""Figures of evaluation results, written to PNG files with matplotlib."""

import itertools

import matplotlib.pyplot as plt
import numpy as np


def plot_rmse_time_series(results, path, burn_in, run=0, observation_std=None):
    """Plot the analysis RMSE against time for each method (one run) and save a PNG to `path`."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name, result in results.items():
        series = result["rmse_series"][run]
        label = f"{name} (aRMSE {result['armse']:.3f})"
        ax.plot(np.arange(1, len(series) + 1), series, lw=0.8, label=label)
    if observation_std is not None:
        ax.axhline(observation_std, color="k", ls=":", lw=1, label="observation error std")
    ax.axvline(burn_in, color="grey", ls="--", lw=1, label="end of burn-in")
    ax.set_yscale("log")
    ax.set_xlabel("cycle k (Δt per cycle)")
    ax.set_ylabel("analysis RMSE")
    ax.set_title(f"Analysis RMSE against time, run {run}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_hovmoller(truth, analysis_means, path, title="", num_cycles=200, start=None):
    """Plot truth, analysis mean and their difference as space–time (Hovmöller) diagrams.

    Args:
        truth: `(T, Nx)` for one run.
        analysis_means: `(T, Nx)` for the same run.
        num_cycles: number of cycles shown (the last ones when `start` is None).
    """
    total = truth.shape[0]
    start = max(total - num_cycles, 0) if start is None else start
    window = slice(start, start + num_cycles)
    error = analysis_means[window] - truth[window]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.5), sharey=True)
    limit = float(np.max(np.abs(truth[window])))
    extent = (0, truth.shape[1], start + num_cycles, start)
    panels = (
        (truth[window], "truth", "RdBu_r", limit),
        (analysis_means[window], "analysis mean", "RdBu_r", limit),
        (error, "analysis − truth", "PuOr_r", max(float(np.max(np.abs(error))), 1e-6)),
    )
    for ax, (field, label, cmap, vmax) in zip(axes, panels):
        image = ax.imshow(field, aspect="auto", cmap=cmap, vmin=-vmax, vmax=vmax, extent=extent)
        ax.set_title(label)
        ax.set_xlabel("grid index n")
        fig.colorbar(image, ax=ax, fraction=0.046)
    axes[0].set_ylabel("cycle k")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_sweep(values, scores, path, parameter, method):
    """Plot a tuning sweep: aRMSE against the swept parameter, best marked."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(values, scores, "o-")
    best = int(np.nanargmin(scores))
    ax.plot(values[best], scores[best], "r*", ms=14, label=f"best {parameter} = {values[best]:g}")
    ax.set_xlabel(parameter)
    ax.set_ylabel("aRMSE (sweep run)")
    ax.set_title(f"{method} tuning sweep")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_learning_curve(curve, path, references=None, title="Learning curve"):
    """Plot the validation aRMSE against training wall time and against analysis cycles seen.

    Args:
        curve: rows with `train_seconds`, `cycles_seen`, `val_armse` and `val_armse_sem`, as
            `keras-da train --validate-every` records them in history.csv.
        path: file to write.
        references: optional {label: aRMSE} drawn as horizontal lines (for example tuned
            3D-Var and EnKF scores).
        title: figure title.
    """
    if not curve:
        raise ValueError(
            "The learning curve has no scored epoch. Train with `keras-da train "
            "--validate-every EPOCHS` to record one."
        )
    # Diverged scores (inf) cannot be drawn on the axis, so the title counts them instead.
    finite = [row for row in curve if np.isfinite(row["val_armse"])]
    if len(finite) < len(curve):
        title = f"{title} ({len(curve) - len(finite)} diverged scores not drawn)"
    hours = np.array([row["train_seconds"] for row in finite]) / 3600
    cycles = np.array([row["cycles_seen"] for row in finite]) / 1e6
    scores = np.array([row["val_armse"] for row in finite])
    errors = np.array([row["val_armse_sem"] for row in finite])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, x, label in ((axes[0], hours, "training wall time (hours)"),
                         (axes[1], cycles, "analysis cycles trained on (millions)")):
        ax.errorbar(x, scores, yerr=errors, fmt="o-", ms=3, label="a_θ (validation)")
        styles = itertools.cycle(("--", ":", "-.", "-"))
        for (name, value), style in zip((references or {}).items(), styles):
            ax.axhline(value, color="gray", ls=style, lw=1, label=f"{name} {value:.3f}")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("aRMSE")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
