"""Classical baselines by name, with the parameter each one is tuned over.

The names are the ones the command line and the result files use: `enkf`, `etkf`, `enkf_n`,
`3dvar` and `oi`.
"""

import inspect

from keras_da.baselines.enkf import EnKF
from keras_da.baselines.enkf_n import EnKFN
from keras_da.baselines.etkf import ETKF
from keras_da.baselines.optimal_interpolation import OptimalInterpolation
from keras_da.baselines.three_dvar import ThreeDVar

BASELINES = {
    "enkf": EnKF,
    "etkf": ETKF,
    "enkf_n": EnKFN,
    "3dvar": ThreeDVar,
    "oi": OptimalInterpolation,
}

# Ensemble sizes the baselines are usually run with on the standard Lorenz 96 experiment
# (Nx = 40, H = I): 20 members for the ensemble filters, a single state for the static-gain
# analyses, whose members would all receive the same increment.
DEFAULT_ENSEMBLE_SIZES = {"enkf": 20, "etkf": 20, "enkf_n": 20, "3dvar": 1, "oi": 1}

# Method name -> (constructor argument, default grid) swept to find each method's best setting.
# The EnKF-N has no tuning parameter and no entry. The inflation grids are factors on the
# anomalies; the 3D-Var grid is σ_b for B = σ_b² I; the OI grid scales a climatological B.
# The grids bracket the best values measured on the standard Lorenz 96 experiment (Nx = 40,
# H = I, R = I, Ne = 20); other setups may need other grids.
SWEEP_PARAMETERS = {
    "etkf": ("inflation", (1.0, 1.01, 1.02, 1.025, 1.03, 1.035, 1.04, 1.05, 1.06)),
    "enkf": ("inflation", (1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.4)),
    "3dvar": ("background_std", (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8)),
    "oi": ("covariance_scale", (0.008, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03)),
}

# Keyword arguments every Keras layer takes besides its own.
LAYER_ARGUMENTS = {"dtype", "name", "trainable"}


def build_baseline(name, observation_operator=None, **settings):
    """Return the baseline layer called `name`, built with `observation_operator` and `settings`.

    Args:
        name: one of the keys of `BASELINES`.
        observation_operator: a `LinearObservation`, or None for H = I, R = I.
        **settings: constructor arguments of that layer, for example `inflation=1.02` for
            `etkf` or `background_covariance=B` for `oi`.

    Raises:
        ValueError: for an unknown name, a setting the layer does not take, or an invalid
            value of a setting.
    """
    if name not in BASELINES:
        raise ValueError(
            f"Unknown baseline {name!r}. Available baselines: {', '.join(BASELINES)}."
        )
    layer_class = BASELINES[name]
    accepted = set(inspect.signature(layer_class.__init__).parameters) | LAYER_ARGUMENTS
    accepted -= {"self", "kwargs", "observation_operator"}
    unknown = sorted(set(settings) - accepted)
    if unknown:
        raise ValueError(
            f"Baseline {name!r} ({layer_class.__name__}) does not take the setting(s) "
            f"{', '.join(unknown)}. Accepted settings: {', '.join(sorted(accepted))}."
        )
    return layer_class(observation_operator=observation_operator, **settings)
