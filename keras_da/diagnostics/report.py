"""Run every diagnostic of a trained learned filter on one twin experiment and write the results.

The learned filter and a reference EnKF filter the same truth and observations concurrently.
The diagnostics then evaluate a_θ along the learned filter's own forecasts x_k^f, and compare the
covariance it implies with the EnKF's analysis covariance at the same cycles. Each diagnostic
writes `<name>.json` and `<name>.png` to the output directory, and `summary.json` gathers the
scalars next to the published values.
"""

import dataclasses
import json
import logging
import os
import time

import numpy as np

from keras_da.baselines import build_baseline
from keras_da.diagnostics import plots
from keras_da.diagnostics.bias import summarize_bias, zero_innovation_bias
from keras_da.diagnostics.bures_wasserstein import bures_wasserstein_distance, mean_eigenspectrum
from keras_da.diagnostics.implied_covariance import (
    covariance_from_gain,
    implied_covariance_jacobian,
    implied_gain_jacobian,
    implied_gain_least_squares,
    relative_difference,
)
from keras_da.diagnostics.sensitivity import (
    centre_offsets,
    centred_offsets,
    translation_averaged_sensitivity,
)
from keras_da.diagnostics.trajectory import analysis_rmse, ensemble_covariance, filter_trajectory
from keras_da.evaluation import initial_ensemble, make_twin_experiment

logger = logging.getLogger(__name__)

# Values published for a_θ on the standard Lorenz 96 experiment (Nx 40, F 8, Δt 0.05, H = I,
# R = I), with a 40-member EnKF run concurrently, in M. Bocquet et al., "Accurate deep
# learning-based filtering for chaotic dynamics by identifying instabilities without an
# ensemble", Chaos 34 (2024), 091104.
PUBLISHED = {
    "source": "M. Bocquet et al., Chaos 34 (2024), 091104",
    "armse": 0.20,
    "bias_mean": 5e-3,
    "bias_std": 1e-3,
    "distance_implied_enkf": 0.013,
    "distance_implied_reference": 0.048,
    "reference_std": 0.40,
}

# Ensemble filters the command can run as the reference. Each gives Pᵃ by its analysis ensemble.
ENSEMBLE_METHODS = ("etkf", "enkf", "enkf_n")

# Innovation scale s of the second least-squares fit, small enough that a_θ responds linearly,
# so that the fit must reproduce the Jacobian gain up to sampling and float32 round-off.
LINEAR_CHECK_SCALE = 0.01

# Offsets |p|, |q| ≤ radius inside which the share of the sensitivity map is reported.
LOCALITY_RADII = (2, 5, 10)


@dataclasses.dataclass
class DiagnosticSettings:
    """Settings of one diagnostic run.

    With the defaults, a run on a 16-filter network with Nx = 40 took about 1.5 minutes on a
    loaded 2-core CPU, 40 % of it in the sensitivity.

    Attributes:
        num_cycles: cycles diagnosed after the burn-in (one forecast state each).
        burn_in: cycles filtered before the diagnostics start, so that both filters have
            forgotten their first ensembles.
        spin_up_cycles: cycles integrated from random states to reach the attractor.
        num_samples: Np, innovations per state for the least-squares gain.
        gain_states: states (evenly spaced in time) where the least-squares gain is estimated.
        sensitivity_states: states (evenly spaced in time) where ∂Pᵃ/∂x is computed.
        innovation_scale: standard deviation of the sampled innovations in units of R^½.
        reference_std: σ of the scaled identity σ² I used as a static reference covariance.
        enkf_method: reference ensemble filter, one of `ENSEMBLE_METHODS`.
        enkf_size: members of the reference ensemble filter.
        enkf_inflation: multiplicative inflation of the reference filter (not used by enkf_n,
            which estimates its own).
        initial_spread: standard deviation of the first ensembles around the truth.
        seed: seed of the truth, the observations, the first ensembles and the innovations.
    """

    num_cycles: int = 1000
    burn_in: int = 200
    spin_up_cycles: int = 1000
    num_samples: int = 400
    gain_states: int = 20
    sensitivity_states: int = 40
    innovation_scale: float = 1.0
    reference_std: float = 0.40
    enkf_method: str = "etkf"
    enkf_size: int = 40
    enkf_inflation: float = 1.02
    initial_spread: float = 1.0
    seed: int = 0

    def check(self, state_dim, num_obs):
        """Raise `ValueError` for settings the diagnostics cannot run with."""
        positive = ("num_cycles", "num_samples", "gain_states", "sensitivity_states")
        for name in positive + ("burn_in", "spin_up_cycles"):
            value = getattr(self, name)
            minimum = 1 if name in positive else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"`{name}` must be an integer >= {minimum}, received {value!r}.")
        if self.num_samples <= num_obs:
            raise ValueError(
                f"`num_samples` ({self.num_samples}) must exceed the number of observations "
                f"Ny={num_obs} for the least-squares gain; use a few times Ny."
            )
        if self.enkf_method not in ENSEMBLE_METHODS:
            raise ValueError(
                f"`enkf_method` must be one of {ENSEMBLE_METHODS}, received {self.enkf_method!r}."
            )
        if self.enkf_size < 2:
            raise ValueError(f"`enkf_size` must be at least 2, received {self.enkf_size}.")
        for name in ("innovation_scale", "reference_std", "initial_spread"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"`{name}` must be a positive finite number, received {value!r}.")
        for name in ("gain_states", "sensitivity_states"):
            if getattr(self, name) > self.num_cycles:
                raise ValueError(
                    f"`{name}` ({getattr(self, name)}) cannot exceed `num_cycles` "
                    f"({self.num_cycles}); the states are taken from the diagnosed cycles."
                )


def build_reference_filter(observation_operator, settings):
    """Return the reference ensemble analysis layer named by `settings.enkf_method`."""
    options = {} if settings.enkf_method == "enkf_n" else {"inflation": settings.enkf_inflation}
    return build_baseline(settings.enkf_method, observation_operator, **options)


def _evenly_spaced(count, total):
    return np.unique(np.linspace(0, total - 1, count).round().astype(int))


def _write_json(output_dir, name, payload):
    with open(os.path.join(output_dir, f"{name}.json"), "w") as handle:
        json.dump(payload, handle, indent=2)


class _Timer:
    """Log the start and the duration of each step and keep the durations in seconds."""

    def __init__(self):
        self.seconds = {}

    def run(self, name, function, *args, **kwargs):
        logger.info("%s ...", name)
        start = time.perf_counter()
        result = function(*args, **kwargs)
        self.seconds[name] = time.perf_counter() - start
        logger.info("%s done in %.1f s", name, self.seconds[name])
        return result


def run_diagnostics(
    dynamics,
    analysis,
    state_dim,
    output_dir,
    settings=None,
    ensemble_size=1,
    reference=None,
    make_plots=True,
):
    """Run every diagnostic of `analysis` and write JSON files and figures to `output_dir`.

    Args:
        dynamics: the model M, a `DynamicsLayer`.
        analysis: the learned analysis, a layer with `increment(forecast, weighted_innovation)`.
        state_dim: Nx.
        output_dir: directory for the JSON files and PNG figures (created if missing).
        settings: a `DiagnosticSettings`. Default: `DiagnosticSettings()`.
        ensemble_size: Ne of the learned filter (1 for the single-state a_θ).
        reference: the reference ensemble analysis layer. Default: built from `settings`.
        make_plots: whether to draw the figures.

    Returns:
        The summary dict written to `summary.json`.
    """
    settings = settings or DiagnosticSettings()
    operator = analysis.observation_operator
    settings.check(state_dim, operator.observation_dim(state_dim))
    os.makedirs(output_dir, exist_ok=True)
    reference = reference or build_reference_filter(operator, settings)
    timer = _Timer()

    run = timer.run(
        "Filtering the twin experiment with a_θ and the reference EnKF",
        filter_concurrently, dynamics, analysis, reference, state_dim, ensemble_size, settings,
    )
    forecasts = run["forecasts"][:, 0] if ensemble_size == 1 else run["forecasts"]
    implied = timer.run(
        "Implied covariance by differentiation", implied_covariance_jacobian, analysis, forecasts
    )
    outputs = (output_dir, make_plots)
    summary = {"filters": run["filters"]}
    summary["bias"] = timer.run(
        "Bias at zero innovation", bias_diagnostic, analysis, forecasts, settings, *outputs
    )
    summary["implied_gain"] = timer.run(
        "Least-squares gain", gain_diagnostic, analysis, forecasts, implied, run, settings, *outputs
    )
    summary["bures_wasserstein"] = timer.run(
        "Bures–Wasserstein distances", distance_diagnostic, implied, run, settings, *outputs
    )
    summary["eigenspectra"] = timer.run(
        "Eigenspectra", spectrum_diagnostic, implied, run, settings, *outputs
    )
    if ensemble_size == 1:
        summary["sensitivity"] = timer.run(
            "Sensitivity of Pᵃ to the state", sensitivity_diagnostic,
            analysis, forecasts, settings, *outputs,
        )
    else:
        logger.warning(
            "Skipping the sensitivity diagnostic: it is defined for a single-state analysis "
            "(Ne = 1) and this filter propagates Ne=%d members.", ensemble_size,
        )
    summary.update(
        {
            "settings": dataclasses.asdict(settings),
            "published": PUBLISHED,
            "seconds": timer.seconds,
        }
    )
    _write_json(output_dir, "summary", summary)
    return summary


def filter_concurrently(dynamics, analysis, reference, state_dim, ensemble_size, settings):
    """Filter one twin experiment with a_θ and the reference EnKF, keeping the cycles after burn-in.

    Returns:
        A dict with the learned filter's `forecasts` `(T, Ne, Nx)`, the reference's analysis
        covariances `enkf_covariances` `(T, Nx, Nx)`, and `filters`, the aRMSE of both.
    """
    operator = analysis.observation_operator
    total_cycles = settings.burn_in + settings.num_cycles
    twin = make_twin_experiment(
        dynamics, operator, state_dim, 1, total_cycles, settings.spin_up_cycles, settings.seed
    )
    start = initial_ensemble(twin, ensemble_size, settings.initial_spread, settings.seed)
    learned_forecasts, learned_analyses = filter_trajectory(
        dynamics, analysis, twin.observations, start
    )
    start = initial_ensemble(twin, settings.enkf_size, settings.initial_spread, settings.seed + 1)
    _, enkf_analyses = filter_trajectory(dynamics, reference, twin.observations, start)

    after_burn_in = slice(settings.burn_in, None)
    learned_rmse = analysis_rmse(learned_analyses, twin.truth)[0, after_burn_in]
    enkf_rmse = analysis_rmse(enkf_analyses, twin.truth)[0, after_burn_in]
    filters = {
        "learned": {"armse": float(learned_rmse.mean()), "ensemble_size": ensemble_size},
        "enkf": {
            "armse": float(enkf_rmse.mean()),
            "method": settings.enkf_method,
            "ensemble_size": settings.enkf_size,
            "inflation": None if settings.enkf_method == "enkf_n" else settings.enkf_inflation,
        },
    }
    logger.info(
        "aRMSE over %d cycles: a_θ %.4f, %s (Ne=%d) %.4f",
        settings.num_cycles, filters["learned"]["armse"], settings.enkf_method,
        settings.enkf_size, filters["enkf"]["armse"],
    )
    for name, rmse in (("a_θ", learned_rmse), (settings.enkf_method, enkf_rmse)):
        if not np.all(np.isfinite(rmse)):
            raise ValueError(
                f"The {name} filter diverged (non-finite analysis) during the diagnostic run. "
                "Check the model, or tune the reference filter's inflation."
            )
    return {
        "forecasts": learned_forecasts[0, after_burn_in],
        "enkf_covariances": ensemble_covariance(enkf_analyses[0, after_burn_in]),
        "filters": filters,
    }


def bias_diagnostic(analysis, forecasts, settings, output_dir, make_plots):
    """Compute b_k along the forecasts, write bias.json and bias.png, and return the summary."""
    bias = zero_innovation_bias(analysis, forecasts)
    summary = summarize_bias(bias)
    logger.info("Bias b_k: time mean %.3e, standard deviation %.3e", summary["mean"], summary["std"])
    _write_json(output_dir, "bias", {**summary, "series": bias.tolist()})
    if make_plots:
        plots.plot_bias(
            bias, os.path.join(output_dir, "bias.png"), settings.burn_in, PUBLISHED["bias_mean"]
        )
    return summary


def gain_diagnostic(analysis, forecasts, implied, run, settings, output_dir, make_plots):
    """Compare the least-squares gain with the Jacobian gain on a few states.

    Writes implied_gain.json and implied_gain.png (Pᵃ by both estimates and the EnKF's at the
    first of those states) and returns the relative differences.
    """
    indices = _evenly_spaced(settings.gain_states, len(forecasts))
    summary, least_squares_covariance = compare_gain_estimates(
        analysis, forecasts[indices], implied[indices], settings
    )
    logger.info(
        "Least squares (Np=%d) vs Jacobian, relative difference of K: %.3g at s=%g, %.3g at s=%g",
        settings.num_samples, summary["gain_relative_difference_mean"], settings.innovation_scale,
        summary["gain_relative_difference_small_innovations"], LINEAR_CHECK_SCALE,
    )
    cycles = (indices + settings.burn_in + 1).tolist()
    _write_json(output_dir, "implied_gain", {**summary, "cycles": cycles})
    if make_plots:
        enkf_label = f"{settings.enkf_method} (Ne={settings.enkf_size}): ensemble Pᵃ"
        panels = {
            "a_θ: Pᵃ by Jacobian": implied[indices[0]],
            f"a_θ: Pᵃ by least squares (Np={settings.num_samples})": least_squares_covariance[0],
            enkf_label: run["enkf_covariances"][indices[0]],
        }
        plots.plot_covariance_panels(
            panels, os.path.join(output_dir, "implied_gain.png"),
            f"Analysis error covariances at cycle {cycles[0]}",
        )
    return summary


def compare_gain_estimates(analysis, forecasts, implied, settings):
    """Estimate K by least squares (at s and at `LINEAR_CHECK_SCALE`) and by differentiation.

    Args:
        analysis: the learned analysis.
        forecasts: the selected forecasts `(batch, Nx)` or `(batch, Ne, Nx)`.
        implied: Pᵃ by differentiation with respect to ζ at those forecasts, `(batch, Nx, Nx)`.
        settings: a `DiagnosticSettings`.

    Returns:
        `(summary, least_squares_covariance)`: a dict of relative differences and the
        least-squares Pᵃ Hᵀ H `(batch, Nx, Nx)`.
    """
    operator = analysis.observation_operator
    state_dim = implied.shape[-1]
    observation_matrix = operator.matrix(state_dim)
    least_squares_gain = implied_gain_least_squares(
        analysis, forecasts, settings.num_samples, settings.seed, settings.innovation_scale
    )
    linear_gain = implied_gain_least_squares(
        analysis, forecasts, settings.num_samples, settings.seed, LINEAR_CHECK_SCALE
    )
    jacobian_gain = implied_gain_jacobian(analysis, forecasts)
    least_squares_covariance = covariance_from_gain(least_squares_gain, operator, state_dim)
    # Only the observed columns Pᵃ Hᵀ are identified by a gain (see `covariance_from_gain`).
    jacobian_covariance = implied @ observation_matrix.T @ observation_matrix
    # ∂a/∂δ and (∂a/∂ζ) Hᵀ R⁻¹ differentiate the same map and must agree to round-off.
    precision = np.diag(1.0 / operator.variances(state_dim))
    chain_rule_gap = np.abs(jacobian_gain - implied @ observation_matrix.T @ precision)
    gain_difference = relative_difference(least_squares_gain, jacobian_gain)
    covariance_difference = relative_difference(least_squares_covariance, jacobian_covariance)
    summary = {
        "num_states": int(len(implied)),
        "num_samples": settings.num_samples,
        "innovation_scale": settings.innovation_scale,
        "gain_relative_difference_mean": float(gain_difference.mean()),
        "gain_relative_difference_max": float(gain_difference.max()),
        "gain_relative_difference_small_innovations": float(
            relative_difference(linear_gain, jacobian_gain).mean()
        ),
        "small_innovation_scale": LINEAR_CHECK_SCALE,
        "covariance_relative_difference_mean": float(covariance_difference.mean()),
        "jacobian_chain_rule_max_gap": float(chain_rule_gap.max()),
    }
    return summary, least_squares_covariance


def distance_diagnostic(implied, run, settings, output_dir, make_plots):
    """Time-average the Bures–Wasserstein distances between Pᵃ_θ, Pᵃ_EnKF and σ² I."""
    state_dim = implied.shape[-1]
    static = settings.reference_std**2 * np.eye(state_dim)
    enkf = run["enkf_covariances"]
    series = {
        "implied_enkf": bures_wasserstein_distance(implied, enkf),
        "implied_reference": bures_wasserstein_distance(implied, static),
        "enkf_reference": bures_wasserstein_distance(enkf, static),
    }

    summary = {"reference_std": settings.reference_std}
    for name, values in series.items():
        summary[f"{name}_mean"] = float(values.mean())
        summary[f"{name}_std"] = float(values.std())
        # Normalised forms, because the normalisation of the published values is unknown here
        # (see docs/diagnostics.md). d / √Nx is in state units, like an RMSE.
        summary[f"{name}_mean_over_sqrt_nx"] = float(values.mean() / np.sqrt(state_dim))
        summary[f"{name}_mean_over_nx"] = float(values.mean() / state_dim)
        summary[f"{name}_squared_mean_over_nx"] = float(np.mean(values**2) / state_dim)
    summary["ratio_implied_enkf_to_implied_reference"] = (
        summary["implied_enkf_mean"] / summary["implied_reference_mean"]
    )
    summary["squared_ratio_implied_enkf_to_implied_reference"] = (
        summary["implied_enkf_squared_mean_over_nx"]
        / summary["implied_reference_squared_mean_over_nx"]
    )
    logger.info(
        "Bures–Wasserstein time means: d(Pᵃ_θ, Pᵃ_EnKF) %.4f, d(Pᵃ_θ, %.2f² I) %.4f",
        summary["implied_enkf_mean"], settings.reference_std, summary["implied_reference_mean"],
    )

    stored_series = {name: values.tolist() for name, values in series.items()}
    _write_json(output_dir, "bures_wasserstein", {**summary, "series": stored_series})
    if make_plots:
        labels = {
            "implied_enkf": "d(Pᵃ_θ, Pᵃ_EnKF)",
            "implied_reference": f"d(Pᵃ_θ, {settings.reference_std:.2f}² I)",
            "enkf_reference": f"d(Pᵃ_EnKF, {settings.reference_std:.2f}² I)",
        }
        plots.plot_distance_series(
            {labels[name]: values for name, values in series.items()},
            os.path.join(output_dir, "bures_wasserstein.png"), settings.burn_in,
        )
    return summary


def spectrum_diagnostic(implied, run, settings, output_dir, make_plots):
    """Time-average the eigenspectra of Pᵃ_θ and of the EnKF's Pᵃ, and compare the leading modes."""
    implied_spectrum = mean_eigenspectrum(implied)
    enkf_spectrum = mean_eigenspectrum(run["enkf_covariances"])
    # An Ne-member ensemble has at most Ne − 1 nonzero eigenvalues, so only those modes compare.
    leading = min(10, len(implied_spectrum), settings.enkf_size - 1)
    gap = np.abs(implied_spectrum[:leading] - enkf_spectrum[:leading]) / enkf_spectrum[:leading]
    summary = {
        "leading_modes": leading,
        "leading_relative_difference_mean": float(gap.mean()),
        "implied_mean_variance": float(implied_spectrum.mean()),
        "enkf_mean_variance": float(enkf_spectrum.mean()),
    }
    logger.info(
        "Eigenspectra: mean relative difference over the %d leading modes %.3f",
        leading, summary["leading_relative_difference_mean"],
    )
    spectra = {"implied": implied_spectrum.tolist(), "enkf": enkf_spectrum.tolist()}
    _write_json(output_dir, "eigenspectra", {**summary, "spectra": spectra})
    if make_plots:
        labels = {
            "a_θ implied Pᵃ": implied_spectrum,
            f"{settings.enkf_method} (Ne={settings.enkf_size}) Pᵃ": enkf_spectrum,
        }
        plots.plot_eigenspectra(
            labels, os.path.join(output_dir, "eigenspectra.png"), settings.reference_std**2
        )
    return summary


def sensitivity_diagnostic(analysis, states, settings, output_dir, make_plots):
    """Average ∂Pᵃ/∂x over states and translations, and report how local the pattern is."""
    indices = _evenly_spaced(settings.sensitivity_states, len(states))
    sensitivity = translation_averaged_sensitivity(analysis, states[indices])
    centred = centre_offsets(sensitivity)
    offsets = centred_offsets(sensitivity.shape[-1])
    magnitude = np.abs(centred)
    total = max(float(magnitude.sum()), 1e-300)
    locality = {}
    for radius in LOCALITY_RADII:
        inside = np.abs(offsets) <= radius
        locality[str(radius)] = float(magnitude[np.ix_(inside, inside)].sum() / total)
    peak_p, peak_q = np.unravel_index(np.argmax(magnitude), magnitude.shape)
    summary = {
        "num_states": int(len(indices)),
        "max_abs": float(magnitude.max()),
        "peak_offsets": {"zeta": int(offsets[peak_p]), "state": int(offsets[peak_q])},
        "share_within_radius": locality,
    }
    logger.info(
        "Sensitivity map: %.0f%% of Σ|S| within offsets ±5, peak at (p, q) = (%d, %d)",
        100 * locality["5"], offsets[peak_p], offsets[peak_q],
    )
    _write_json(
        output_dir, "sensitivity",
        {**summary, "offsets": offsets.tolist(), "map_centred": centred.tolist()},
    )
    if make_plots:
        plots.plot_sensitivity(centred, offsets, os.path.join(output_dir, "sensitivity.png"))
    return summary


def format_summary_table(summary):
    """Return the summary as a plain-text table of measured and published values."""
    rows = _summary_rows(summary)
    width = max(len(row[0]) for row in rows)
    lines = [f"{'quantity':<{width}}  {'measured':>10}  {'published':>10}"]
    for name, measured, published_value in rows:
        lines.append(f"{name:<{width}}  {measured:>10}  {published_value:>10}")
    lines.append(f"published: {PUBLISHED['source']}")
    # NOTE: the normalisation of the published distances is unknown here. Both d / Nx and
    # d² / Nx are consistent with them (see docs/diagnostics.md), so both are printed.
    lines.append(
        "Bures–Wasserstein distance d: the normalisation of the published values is unknown "
        "here, so they are listed against both d/Nx and d²/Nx (time means)."
    )
    return "\n".join(lines)


def _summary_rows(summary):
    """Return (quantity, measured, published) text triples for the summary table."""
    filters = summary["filters"]
    gain = summary["implied_gain"]
    enkf = f"{filters['enkf']['method']} (Ne={filters['enkf']['ensemble_size']})"
    rows = [
        ("aRMSE of a_θ", f"{filters['learned']['armse']:.4f}", f"≈{PUBLISHED['armse']:.2f}"),
        (f"aRMSE of {enkf}", f"{filters['enkf']['armse']:.4f}", "-"),
        ("bias b_k, time mean", f"{summary['bias']['mean']:.2e}", f"{PUBLISHED['bias_mean']:.0e}"),
        ("bias b_k, standard deviation", f"{summary['bias']['std']:.2e}", f"{PUBLISHED['bias_std']:.0e}"),
    ]
    rows += _distance_rows(summary["bures_wasserstein"])
    rows += [
        (
            f"eigenvalues, {summary['eigenspectra']['leading_modes']} leading modes: mean relative gap",
            f"{summary['eigenspectra']['leading_relative_difference_mean']:.3f}",
            "close",
        ),
        (
            f"K least squares vs Jacobian, s = {gain['innovation_scale']:g}",
            f"{gain['gain_relative_difference_mean']:.3g}",
            "-",
        ),
        (
            f"K least squares vs Jacobian, s = {LINEAR_CHECK_SCALE:g}",
            f"{gain['gain_relative_difference_small_innovations']:.3g}",
            "-",
        ),
    ]
    if "sensitivity" in summary:
        share = summary["sensitivity"]["share_within_radius"]["5"]
        rows.append(("sensitivity: share of Σ|S| within offsets ±5", f"{share:.2f}", "local"))
    return rows


def _distance_rows(distances):
    reference = f"{distances['reference_std']:.2f}² I"
    pairs = (
        ("implied_enkf", "Pᵃ_θ vs Pᵃ_EnKF", f"{PUBLISHED['distance_implied_enkf']}"),
        ("implied_reference", f"Pᵃ_θ vs {reference}", f"{PUBLISHED['distance_implied_reference']}"),
        ("enkf_reference", f"Pᵃ_EnKF vs {reference}", "-"),
    )
    published_ratio = PUBLISHED["distance_implied_enkf"] / PUBLISHED["distance_implied_reference"]
    rows = []
    for suffix, label in (("mean_over_nx", "d/Nx"), ("squared_mean_over_nx", "d²/Nx")):
        for name, pair, published in pairs:
            rows.append((f"{label}, {pair}", f"{distances[f'{name}_{suffix}']:.4f}", published))
    rows.append(
        (
            "ratio d(Pᵃ_θ, Pᵃ_EnKF) / d(Pᵃ_θ, σ² I)",
            f"{distances['ratio_implied_enkf_to_implied_reference']:.3f}",
            f"{published_ratio:.3f}",
        )
    )
    rows.append(
        (
            "same ratio of d²/Nx",
            f"{distances['squared_ratio_implied_enkf_to_implied_reference']:.3f}",
            f"{published_ratio:.3f}",
        )
    )
    return rows


def diagnose_model_file(model_path, output_dir, settings=None, make_plots=True):
    """Load a saved `LearnedFilter` (.keras) and run `run_diagnostics` on it.

    Returns:
        The summary dict, with the text table under `"table"`.
    """
    import keras

    if not os.path.isfile(model_path):
        raise FileNotFoundError(
            f"No model file at {model_path!r}. Train one with `keras-da train`."
        )
    logger.info("Loading %s", model_path)
    model = keras.models.load_model(model_path)
    summary = run_diagnostics(
        model.dynamics,
        model.analysis,
        model.state_dim,
        output_dir,
        settings=settings,
        ensemble_size=getattr(model, "ensemble_size", 1),
        make_plots=make_plots,
    )
    summary["table"] = format_summary_table(summary)
    return summary
