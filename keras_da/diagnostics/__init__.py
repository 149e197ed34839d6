"""Diagnostics of a learned analysis a_θ.

- `bias`: the increment a_θ(x, 0) at zero innovation along the filter's forecasts.
- `implied_covariance`: the gain K(x) and covariance Pᵃ(x) implied by the analysis, by least
  squares over sampled innovations or by automatic differentiation.
- `bures_wasserstein`: distances and eigenspectra of covariance matrices.
- `sensitivity`: the translation-averaged derivative of Pᵃ(x) with respect to the state.
- `trajectory`: forecasts and analyses of filters run concurrently on one twin experiment.
- `report`: all of the above on a saved model, written to JSON files and figures.
"""

from keras_da.diagnostics.bias import summarize_bias, zero_innovation_bias, zero_innovation_increment
from keras_da.diagnostics.bures_wasserstein import (
    bures_wasserstein_distance,
    eigenspectra,
    mean_eigenspectrum,
    symmetric_sqrtm,
)
from keras_da.diagnostics.implied_covariance import (
    covariance_from_gain,
    implied_covariance_jacobian,
    implied_gain_jacobian,
    implied_gain_least_squares,
    mean_increment,
    relative_difference,
)
from keras_da.diagnostics.report import (
    DiagnosticSettings,
    diagnose_model_file,
    format_summary_table,
    run_diagnostics,
)
from keras_da.diagnostics.sensitivity import (
    centre_offsets,
    centred_offsets,
    covariance_state_jacobian,
    translation_average,
    translation_averaged_sensitivity,
)
from keras_da.diagnostics.trajectory import analysis_rmse, ensemble_covariance, filter_trajectory

__all__ = [
    "DiagnosticSettings",
    "analysis_rmse",
    "bures_wasserstein_distance",
    "centre_offsets",
    "centred_offsets",
    "covariance_from_gain",
    "covariance_state_jacobian",
    "diagnose_model_file",
    "eigenspectra",
    "ensemble_covariance",
    "filter_trajectory",
    "format_summary_table",
    "implied_covariance_jacobian",
    "implied_gain_jacobian",
    "implied_gain_least_squares",
    "mean_eigenspectrum",
    "mean_increment",
    "relative_difference",
    "run_diagnostics",
    "summarize_bias",
    "symmetric_sqrtm",
    "translation_average",
    "translation_averaged_sensitivity",
    "zero_innovation_bias",
    "zero_innovation_increment",
]
