"""The standard evaluation of a trained filter: a_θ, tuned 3D-Var and the free run on one twin."""

import json
import logging
import os
import platform
import time

import keras
import numpy as np

from keras_da.analysis import FreeRun
from keras_da.baselines import ThreeDVar
from keras_da.evaluation import evaluate_methods, make_twin_experiment
from keras_da.presets import get_preset

logger = logging.getLogger(__name__)


def load_preset_for_model(model_path, preset_name=None):
    """Return the preset stored beside `model_path` (preset.json), or the named one."""
    if preset_name is not None:
        return get_preset(preset_name)
    stored = os.path.join(os.path.dirname(os.path.abspath(model_path)), "preset.json")
    if os.path.isfile(stored):
        with open(stored) as stream:
            return json.load(stream)
    return get_preset()


def tune_three_dvar(dynamics, observation_operator, preset, stds, state_dim=None):
    """Pick σ_b of 3D-Var (B = σ_b² I) with the lowest aRMSE on a short separate twin run."""
    # Imported here because keras_da.baselines_report imports this module.
    from keras_da.baselines_report import sweep_method

    return sweep_method(
        "3dvar", preset, dynamics, observation_operator, 1, "float32", {}, None, grid=stds,
        state_dim=state_dim,
    )


def format_table(results, published=None):
    lines = [f"{'method':<14}{'Ne':>4}{'aRMSE':>9}{'std':>9}{'stderr':>9}{'seconds':>9}"]
    for name, r in results.items():
        lines.append(
            f"{name:<14}{r['ensemble_size']:>4}{r['armse']:>9.4f}{r['armse_std']:>9.4f}"
            f"{r['armse_stderr']:>9.4f}{r['seconds']:>9.1f}"
        )
    if published:
        lines.append(f"published ({published.get('source', '')}): " + ", ".join(
            f"{k} {v}" for k, v in published.items() if k != "source"
        ))
    return "\n".join(lines)


def evaluate_model_file(
    model_path, output, preset_name=None, overrides=None, plots=True, state_dim=None, preset=None
):
    """Evaluate a saved `LearnedFilter` against tuned 3D-Var and the free run; write JSON and PNGs.

    The evaluation settings come from `preset` (a preset dict) when given, else from the
    preset named `preset_name`, else from preset.json beside the model. `state_dim` evaluates on a grid of another size than the one the model was trained on
    (transfer across Nx): the periodic convolutions of a_θ apply to any Nx.
    """
    if preset is None:
        preset = load_preset_for_model(model_path, preset_name)
    preset = json.loads(json.dumps(preset))  # the overrides below must not change the caller's
    config = preset["evaluation"]
    for key, value in (overrides or {}).items():
        if value is not None:
            config[key] = value
    os.makedirs(output, exist_ok=True)

    model = keras.models.load_model(model_path)
    dynamics, H = model.dynamics, model.observation_operator
    trained_state_dim = model.state_dim
    state_dim = state_dim or trained_state_dim
    if state_dim != trained_state_dim:
        dynamics.check_state_dim(state_dim)
        logger.info("Transfer: model trained at Nx=%d, evaluated at Nx=%d.", trained_state_dim, state_dim)
    logger.info("Tuning 3D-Var over σ_b in %s.", config["three_dvar_stds"])
    best_std, sweep = tune_three_dvar(dynamics, H, preset, config["three_dvar_stds"], state_dim)

    logger.info(
        "Twin experiment: %d runs x (%d burn-in + %d scored) cycles.",
        config["num_runs"], config["burn_in"], config["num_cycles"],
    )
    twin = make_twin_experiment(
        dynamics, H, state_dim, config["num_runs"], config["burn_in"] + config["num_cycles"],
        preset["spin_up_cycles"], seed=config["seed"],
    )
    methods = {
        "a_theta": (model.analysis, model.ensemble_size),
        "3dvar": (ThreeDVar(H, background_std=best_std), 1),
        "free_run": (FreeRun(H), 1),
    }
    start = time.perf_counter()
    results = evaluate_methods(
        methods, dynamics, twin, config["burn_in"], initial_spread=config["initial_spread"],
        seed=config["seed"] + 7,
    )
    report = {
        "model": os.path.abspath(model_path),
        "preset": preset["name"],
        "state_dim": state_dim,
        "trained_state_dim": trained_state_dim,
        "evaluation": config,
        "three_dvar_sweep": {"best_background_std": best_std, "armse_by_std": sweep},
        "results": {
            name: {k: v for k, v in r.items() if k not in ("rmse_series", "analysis_means")}
            for name, r in results.items()
        },
        "published": preset.get("published"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "seconds": time.perf_counter() - start,
    }
    report["table"] = format_table(results, preset.get("published"))
    with open(os.path.join(output, "results.json"), "w") as stream:
        json.dump(report, stream, indent=2)
    if plots:
        from keras_da import plotting

        plotting.plot_rmse_time_series(
            results, os.path.join(output, "rmse_time.png"), config["burn_in"],
            observation_std=float(np.sqrt(np.mean(H.variances(state_dim)))),
        )
        plotting.plot_hovmoller(
            twin.truth[0], results["a_theta"]["analysis_means"][0],
            os.path.join(output, "hovmoller.png"), title="a_θ analysis, run 0, last 200 cycles",
        )
        plotting.plot_sweep(
            np.array(list(sweep)), np.array(list(sweep.values())),
            os.path.join(output, "three_dvar_sweep.png"), "σ_b", "3D-Var",
        )
    return report
