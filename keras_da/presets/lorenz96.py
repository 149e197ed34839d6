"""Lorenz 96 presets: the standard twin experiment, the published network size, a tiny one."""

import copy

# The standard Lorenz 96 twin experiment: Nx = 40, F = 8, RK4 with one step of 0.05 between
# observations, every variable observed (H = I) with unit error variance (R = I).
# Reference accuracies (time-averaged analysis RMSE) as published in M. Bocquet et al.,
# Chaos 34 (2024), 091104, table of results: EnKF-N Ne = 20: 0.191, EnKF-N Ne = 40: 0.179,
# tuned 3D-Var: 0.40, a_θ Ne = 1 (Nf = 40): 0.191, (Nf = 100): 0.185.
_LORENZ96 = {
    "name": "lorenz96",
    "description": (
        "Standard Lorenz 96 twin experiment (Nx 40, F 8, dt 0.05, H = I, R = I) with a small "
        "residual CNN sized to train on a 2-core CPU in under 20 minutes."
    ),
    "model": {
        "name": "lorenz96",
        "state_dim": 40,
        "forcing": 8.0,
        "time_step": 0.05,
        "num_substeps": 1,
    },
    "observation": {"variance": 1.0, "stride": None},
    # Random states N(F, 1) integrated for this many cycles (50 time units) reach the attractor.
    "spin_up_cycles": 1000,
    "network": {
        "filters": 32,
        "num_blocks": 2,
        "convs_per_block": 2,
        "kernel_size": 5,
        "activation": "swish",
    },
    "training": {
        "ensemble_size": 1,
        "pool_size": 4096,
        "batch_size": 64,
        "window_length": 10,
        "steps": 6000,
        "steps_per_epoch": 500,
        "learning_rate": 2e-3,
        "final_learning_rate": 2e-5,
        "initial_spread": 1.0,
        "seed": 1,
    },
    "evaluation": {
        "num_runs": 8,
        "num_cycles": 10000,
        "burn_in": 1000,
        "initial_spread": 1.0,
        "seed": 12345,
        # σ_b values of the 3D-Var sweep (B = σ_b² I); the best is chosen on a shorter run.
        "three_dvar_stds": [0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.8],
        "sweep_cycles": 2000,
    },
    # Classical filters tuned on this experiment, with the aRMSE each reached (8 runs x 10,000
    # cycles after 1,000 burn-in, `python benchmarks/baselines_accuracy.py`, 2-core CPU).
    # "setting" is the value of the method's tuning parameter in keras_da.baselines.SWEEP_PARAMETERS.
    "baselines": {
        "3dvar": {"ensemble_size": 1, "setting": 0.5, "armse": 0.4025},
        "oi": {"ensemble_size": 1, "setting": 0.0175, "armse": 0.4115},
        "enkf": {"ensemble_size": 20, "setting": 1.2, "armse": 0.3336},
        "etkf": {"ensemble_size": 20, "setting": 1.025, "armse": 0.1910},
        "enkf_n": {"ensemble_size": 20, "setting": None, "armse": 0.1992},
    },
    "published": {
        "enkf_n_20": 0.191,
        "enkf_n_40": 0.179,
        "three_dvar": 0.40,
        "a_theta_nf40": 0.191,
        "a_theta_nf100": 0.185,
        "source": "M. Bocquet et al., Chaos 34 (2024), 091104",
    },
}

# The published network size (Nf 40, Nb 5, Nsb 5) and pool of 2^18 trajectories, for a GPU.
_LORENZ96_PAPER = copy.deepcopy(_LORENZ96)
_LORENZ96_PAPER.update(
    {
        "name": "paper",
        "description": (
            "Lorenz 96 twin experiment with the published network size (Nf 40, Nb 5, Nsb 5) and "
            "2^18 training trajectories. Meant for a GPU: on a 2-core CPU it runs for days."
        ),
        "network": {
            "filters": 40,
            "num_blocks": 5,
            "convs_per_block": 5,
            "kernel_size": 5,
            "activation": "swish",
        },
    }
)
_LORENZ96_PAPER["training"].update(
    {"pool_size": 2**18, "batch_size": 256, "steps": 200000, "steps_per_epoch": 1000}
)

# The recipe of the shipped filter `lorenz96-ne1` (keras_da.pretrained): a deeper network, a
# larger batch and pool and six times more steps than the default. It trained in 91.7 minutes
# on the 2-core CPU of docs/benchmarks.md, which also shows its learning curve.
_LORENZ96_ACCURATE = copy.deepcopy(_LORENZ96)
_LORENZ96_ACCURATE.update(
    {
        "name": "lorenz96_accurate",
        "description": (
            "Standard Lorenz 96 twin experiment (Nx 40, F 8, dt 0.05, H = I, R = I) with the "
            "recipe of the shipped filter lorenz96-ne1: Nf 32, Nb 3, Nsb 2, B 128, 36,000 steps."
        ),
    }
)
_LORENZ96_ACCURATE["network"].update({"num_blocks": 3})
_LORENZ96_ACCURATE["training"].update(
    {
        "pool_size": 8192,
        "batch_size": 128,
        "steps": 36000,
        "steps_per_epoch": 1000,
        "final_learning_rate": 1e-5,
    }
)

# A tiny configuration for tests and quick checks: seconds, not minutes.
_TINY = copy.deepcopy(_LORENZ96)
_TINY.update(
    {
        "name": "tiny",
        "description": "Tiny Lorenz 96 setup for smoke tests (Nx 40, small network, short runs).",
        "spin_up_cycles": 200,
        "network": {
            "filters": 8,
            "num_blocks": 1,
            "convs_per_block": 2,
            "kernel_size": 5,
            "activation": "swish",
        },
    }
)
_TINY["training"].update(
    {"pool_size": 64, "batch_size": 16, "window_length": 5, "steps": 40, "steps_per_epoch": 20}
)
_TINY["evaluation"].update(
    {"num_runs": 2, "num_cycles": 300, "burn_in": 50, "three_dvar_stds": [0.3, 0.5], "sweep_cycles": 200}
)

LORENZ96_PRESETS = (_LORENZ96, _LORENZ96_ACCURATE, _LORENZ96_PAPER, _TINY)
