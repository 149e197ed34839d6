"""Run classical filters on one twin experiment, tune them, and write results and figures."""

import json
import logging
import os

import numpy as np

from keras_da.analysis import FreeRun
from keras_da.baselines import (
    DEFAULT_ENSEMBLE_SIZES,
    SWEEP_PARAMETERS,
    build_baseline,
    climatological_covariance,
)
from keras_da.evaluation import evaluate_methods, make_twin_experiment
from keras_da.evaluation_report import format_table
from keras_da.experiment import build_dynamics, build_observation_operator

logger = logging.getLogger(__name__)


def default_ensemble_size(preset, method):
    tuned = preset.get("baselines", {}).get(method, {})
    return tuned.get("ensemble_size", DEFAULT_ENSEMBLE_SIZES.get(method, 1))


def make_analysis(method, H, value, preset, dynamics, dtype, cache):
    """Build one method's analysis layer, with `value` for its tuning parameter (or None)."""
    if method == "free_run":
        return FreeRun(H, dtype=dtype)
    kwargs = {"dtype": dtype}
    if method == "oi":
        if "B" not in cache:
            logger.info("Estimating the climatological B from a free run.")
            cache["B"] = climatological_covariance(dynamics, preset["model"]["state_dim"], seed=11)
        kwargs["background_covariance"] = cache["B"]
    if value is None:
        value = preset.get("baselines", {}).get(method, {}).get("setting")
    if value is not None and method in SWEEP_PARAMETERS:
        kwargs[SWEEP_PARAMETERS[method][0]] = value
    return build_baseline(method, H, **kwargs)


def sweep_method(
    method, preset, dynamics, H, ensemble_size, dtype, cache, output, grid=None, state_dim=None
):
    """Return (best value, {value: aRMSE}) of `method`'s tuning parameter on a short run.

    The values tried are `grid`, by default those of `SWEEP_PARAMETERS`, on a twin experiment
    of Nx = `state_dim` (default: the preset's). The sweep figure goes to `output`, unless it
    is `None`.
    """
    from keras_da import plotting

    parameter, default_grid = SWEEP_PARAMETERS[method]
    grid = default_grid if grid is None else grid
    config = preset["evaluation"]
    burn_in = min(config["burn_in"], config["sweep_cycles"] // 2)
    twin = make_twin_experiment(
        dynamics, H, state_dim or preset["model"]["state_dim"], config["num_runs"],
        config["sweep_cycles"] + burn_in, preset["spin_up_cycles"], seed=config["seed"] + 1000,
    )
    methods = {
        f"{method}:{value:g}": (make_analysis(method, H, value, preset, dynamics, dtype, cache), ensemble_size)
        for value in grid
    }
    results = evaluate_methods(methods, dynamics, twin, burn_in, keep_series=False, dtype=dtype)
    scores = np.array([results[f"{method}:{v:g}"]["armse"] for v in grid])
    scores = np.where(np.isfinite(scores), scores, np.inf)
    best = float(grid[int(np.argmin(scores))])
    if output is not None:
        plotting.plot_sweep(np.array(grid), scores, os.path.join(output, f"sweep_{method}.png"), parameter, method)
    return best, {float(v): float(s) for v, s in zip(grid, scores)}


def run_baseline_report(preset, methods, output, ensemble_sizes=None, settings=None, sweep=False,
                        dtype="float32"):
    """Run `methods` on the preset's twin experiment; write results.json and figures to `output`."""
    from keras_da import plotting

    os.makedirs(output, exist_ok=True)
    ensemble_sizes, settings = dict(ensemble_sizes or {}), dict(settings or {})
    dynamics = build_dynamics(preset["model"])
    H = build_observation_operator(preset["observation"])
    config = preset["evaluation"]
    cache, sweeps, chosen = {}, {}, {}
    for method in methods:
        ensemble_sizes.setdefault(method, default_ensemble_size(preset, method))
        if sweep and method in SWEEP_PARAMETERS and method not in settings:
            logger.info("Sweeping %s over %s.", method, SWEEP_PARAMETERS[method][0])
            best, scores = sweep_method(method, preset, dynamics, H, ensemble_sizes[method], dtype, cache, output)
            settings[method] = best
            sweeps[method] = {"parameter": SWEEP_PARAMETERS[method][0], "best": best, "armse": scores}
        chosen[method] = settings.get(method)

    twin = make_twin_experiment(
        dynamics, H, preset["model"]["state_dim"], config["num_runs"],
        config["burn_in"] + config["num_cycles"], preset["spin_up_cycles"], seed=config["seed"],
    )
    analyses = {
        method: (make_analysis(method, H, chosen[method], preset, dynamics, dtype, cache), ensemble_sizes[method])
        for method in methods
    }
    results = evaluate_methods(
        analyses, dynamics, twin, config["burn_in"], initial_spread=config["initial_spread"],
        seed=config["seed"] + 7, dtype=dtype,
    )
    report = {
        "preset": preset["name"],
        "evaluation": config,
        "dtype": dtype,
        "settings": {
            m: {"parameter": SWEEP_PARAMETERS[m][0] if m in SWEEP_PARAMETERS else None,
                "value": chosen[m], "ensemble_size": ensemble_sizes[m]}
            for m in methods
        },
        "sweeps": sweeps,
        "results": {
            name: {k: v for k, v in r.items() if k not in ("rmse_series", "analysis_means")}
            for name, r in results.items()
        },
        "published": preset.get("published"),
    }
    report["table"] = format_table(results, preset.get("published"))
    with open(os.path.join(output, "results.json"), "w") as stream:
        json.dump(report, stream, indent=2)
    plotting.plot_rmse_time_series(results, os.path.join(output, "rmse_time.png"), config["burn_in"])
    return report
