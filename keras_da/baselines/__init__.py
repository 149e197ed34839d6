"""Classical analyses with the same call signature as the learned one."""

from keras_da.baselines.enkf import EnKF
from keras_da.baselines.enkf_n import EnKFN, enkf_n_dual_cost, minimize_enkf_n_dual
from keras_da.baselines.etkf import ETKF
from keras_da.baselines.localization import gaspari_cohn, periodic_localization_matrix
from keras_da.baselines.optimal_interpolation import (
    OptimalInterpolation,
    climatological_covariance,
    static_gain,
)
from keras_da.baselines.registry import (
    BASELINES,
    DEFAULT_ENSEMBLE_SIZES,
    SWEEP_PARAMETERS,
    build_baseline,
)
from keras_da.baselines.three_dvar import ThreeDVar

__all__ = [
    "BASELINES",
    "DEFAULT_ENSEMBLE_SIZES",
    "ETKF",
    "EnKF",
    "EnKFN",
    "OptimalInterpolation",
    "SWEEP_PARAMETERS",
    "ThreeDVar",
    "build_baseline",
    "climatological_covariance",
    "enkf_n_dual_cost",
    "gaspari_cohn",
    "minimize_enkf_n_dual",
    "periodic_localization_matrix",
    "static_gain",
]
