"""keras_da: learned sequential data assimilation with Keras.

The dynamics, the analysis and the forecast–analysis cycle are Keras layers; a learned analysis
a_θ is trained through the cycle with truncated backpropagation through time.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_da.analysis import AnalysisLayer, FreeRun, PeriodicConv1D, ResidualCNNAnalysis  # noqa: E402
from keras_da.baselines import ThreeDVar  # noqa: E402
from keras_da.cycle import AssimilationCell  # noqa: E402
from keras_da.dynamics import DynamicsLayer, Lorenz96, lorenz96_tendency, rk4_step  # noqa: E402
from keras_da.observations import LinearObservation  # noqa: E402
from keras_da.training import LearnedFilter  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AnalysisLayer",
    "AssimilationCell",
    "DynamicsLayer",
    "FreeRun",
    "LearnedFilter",
    "LinearObservation",
    "Lorenz96",
    "PeriodicConv1D",
    "ResidualCNNAnalysis",
    "ThreeDVar",
    "lorenz96_tendency",
    "rk4_step",
]
