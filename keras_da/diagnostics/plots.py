"""Figures of the diagnostics, drawn with matplotlib's Agg canvas (no display needed).

Each function builds a `matplotlib.figure.Figure` directly instead of going through `pyplot`, so
drawing a diagnostic neither selects a global backend nor leaves figures open.
"""

import numpy as np
from matplotlib.figure import Figure

DPI = 120


def _new_figure(size):
    # The constrained layout keeps axis labels and colour bars inside the saved image. It
    # misplaces them around equal-aspect images (matplotlib 3.11), so images use aspect="auto".
    return Figure(figsize=size, layout="constrained")


def _save(figure, path):
    figure.savefig(path, dpi=DPI)


def plot_bias(bias, path, first_cycle=0, published_mean=None):
    """Plot the zero-innovation bias b_k against the cycle index and save a PNG to `path`.

    Args:
        bias: b_k, array of shape `(T,)`, in state units.
        path: output file.
        first_cycle: cycle index of `bias[0]` (the burn-in length).
        published_mean: optional published time mean, drawn as a dotted line.
    """
    bias = np.asarray(bias)
    figure = _new_figure((8, 3.5))
    axes = figure.add_subplot()
    cycles = first_cycle + np.arange(1, len(bias) + 1)
    axes.plot(cycles, bias, lw=0.8, label="b_k = ‖a_θ(x_k, 0)‖ / √Nx")
    axes.axhline(bias.mean(), color="C1", ls="--", lw=1, label=f"time mean {bias.mean():.2e}")
    if published_mean is not None:
        axes.axhline(published_mean, color="k", ls=":", lw=1, label=f"published {published_mean:.0e}")
    axes.set_xlabel("cycle k")
    axes.set_ylabel("bias (state units)")
    axes.set_title("Increment of a_θ at zero innovation along the filter's forecasts")
    axes.legend(fontsize=8)
    _save(figure, path)


def plot_covariance_panels(covariances, path, title=""):
    """Draw several Nx × Nx covariance matrices side by side on one symmetric colour scale.

    Args:
        covariances: dict from a panel label to an array `(Nx, Nx)`.
        path: output file.
        title: figure title.
    """
    limit = max(float(np.max(np.abs(matrix))) for matrix in covariances.values())
    figure = _new_figure((4.2 * len(covariances), 4.0))
    for index, (label, matrix) in enumerate(covariances.items()):
        axes = figure.add_subplot(1, len(covariances), index + 1)
        image = axes.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        axes.set_title(label, fontsize=9)
        axes.set_xlabel("column m (ζ index)")
        axes.set_ylabel("row n (increment index)")
        figure.colorbar(image, ax=axes, fraction=0.046)
    figure.suptitle(title)
    _save(figure, path)


def plot_distance_series(series, path, first_cycle=0):
    """Plot Bures–Wasserstein distances against the cycle index, one line per pair.

    Args:
        series: dict from a pair label to an array `(T,)` of distances.
        path: output file.
        first_cycle: cycle index of the first entry (the burn-in length).
    """
    figure = _new_figure((8, 3.5))
    axes = figure.add_subplot()
    for label, values in series.items():
        values = np.asarray(values)
        cycles = first_cycle + np.arange(1, len(values) + 1)
        axes.plot(cycles, values, lw=0.8, label=f"{label} (mean {values.mean():.3g})")
    axes.set_xlabel("cycle k")
    axes.set_ylabel("Bures–Wasserstein distance")
    axes.set_title("Distance between analysis error covariances")
    axes.legend(fontsize=8)
    _save(figure, path)


def plot_eigenspectra(spectra, path, reference_variance=None):
    """Plot time-averaged eigenspectra on a log scale, one line per covariance.

    Args:
        spectra: dict from a label to the mean sorted eigenvalues `(Nx,)`.
        path: output file.
        reference_variance: optional σ², drawn as a horizontal line (the flat spectrum of σ² I).
    """
    figure = _new_figure((6, 4))
    axes = figure.add_subplot()
    largest = 0.0
    for label, values in spectra.items():
        values = np.asarray(values)
        largest = max(largest, float(values.max()))
        axes.plot(np.arange(1, len(values) + 1), values, marker="o", ms=3, lw=1, label=label)
    # An Ne-member ensemble covariance has rank Ne − 1 at most: its trailing eigenvalues are
    # round-off, so the axis stops six decades below the largest eigenvalue.
    axes.set_ylim(bottom=1e-6 * largest)
    if reference_variance is not None:
        axes.axhline(reference_variance, color="k", ls=":", lw=1, label=f"σ² = {reference_variance:.3g}")
    axes.set_yscale("log")
    axes.set_xlabel("mode index (decreasing eigenvalue)")
    axes.set_ylabel("time-averaged eigenvalue")
    axes.set_title("Eigenspectra of the analysis error covariance")
    axes.legend(fontsize=8)
    _save(figure, path)


def plot_sensitivity(centred_sensitivity, offsets, path, max_offset=10):
    """Draw the translation-averaged sensitivity map S[p, q] around zero offset.

    Args:
        centred_sensitivity: S with offset zero in the middle of both axes, `(Nx, Nx)`
            (see `keras_da.diagnostics.sensitivity.centre_offsets`).
        offsets: the offsets along each axis, `(Nx,)`.
        path: output file.
        max_offset: largest |offset| drawn.
    """
    keep = np.abs(offsets) <= max_offset
    window = np.asarray(centred_sensitivity)[np.ix_(keep, keep)]
    shown_offsets = offsets[keep]
    limit = max(float(np.max(np.abs(window))), 1e-30)
    low, high = shown_offsets[0] - 0.5, shown_offsets[-1] + 0.5
    extent = (low, high, high, low)
    figure = _new_figure((5.5, 4.6))
    axes = figure.add_subplot()
    image = axes.imshow(
        window, cmap="RdBu_r", vmin=-limit, vmax=limit, extent=extent, aspect="auto"
    )
    axes.set_xlabel("offset q (state index n + q)")
    axes.set_ylabel("offset p (ζ index n + p)")
    axes.set_title("∂Pᵃ[n, n+p] / ∂x[n+q], mean over n and time", fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.046)
    _save(figure, path)
