"""Analysis layers: (forecast ensemble, observation) → analysis ensemble."""

from keras_da.analysis.base import AnalysisLayer, FreeRun
from keras_da.analysis.resnet import PeriodicConv1D, ResidualCNNAnalysis, ensemble_features

__all__ = ["AnalysisLayer", "FreeRun", "PeriodicConv1D", "ResidualCNNAnalysis", "ensemble_features"]
