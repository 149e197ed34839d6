"""Analysis layers: (forecast ensemble, observation) → analysis ensemble."""

from keras_da.analysis.base import AnalysisLayer, FreeRun
from keras_da.analysis.resnet import PeriodicConv1D, ResidualCNNAnalysis, ensemble_features
from keras_da.analysis.variants import InnovationOnlyAnalysis, LinearCNNAnalysis

__all__ = [
    "AnalysisLayer",
    "FreeRun",
    "InnovationOnlyAnalysis",
    "LinearCNNAnalysis",
    "PeriodicConv1D",
    "ResidualCNNAnalysis",
    "ensemble_features",
]
