"""keras_da: learned sequential data assimilation with Keras.

The dynamics, the analysis and the forecast–analysis cycle are Keras layers; a learned analysis
a_θ is trained through the cycle with truncated backpropagation through time.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_da.analysis import (  # noqa: E402
    AnalysisLayer,
    FreeRun,
    InnovationOnlyAnalysis,
    LinearCNNAnalysis,
    PeriodicConv1D,
    ResidualCNNAnalysis,
)
from keras_da.baselines import (  # noqa: E402
    ETKF,
    EnKF,
    EnKFN,
    OptimalInterpolation,
    ThreeDVar,
    build_baseline,
)
from keras_da.cycle import AssimilationCell  # noqa: E402
from keras_da.dynamics import (  # noqa: E402
    DynamicsLayer,
    KuramotoSivashinsky,
    Lorenz96,
    lorenz96_tendency,
    rk4_step,
)
from keras_da.observations import LinearObservation  # noqa: E402
from keras_da.training import LearnedFilter  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AnalysisLayer",
    "AssimilationCell",
    "DynamicsLayer",
    "ETKF",
    "EnKF",
    "EnKFN",
    "FreeRun",
    "InnovationOnlyAnalysis",
    "KuramotoSivashinsky",
    "LearnedFilter",
    "LinearCNNAnalysis",
    "LinearObservation",
    "Lorenz96",
    "OptimalInterpolation",
    "PeriodicConv1D",
    "ResidualCNNAnalysis",
    "ThreeDVar",
    "build_baseline",
    "lorenz96_tendency",
    "rk4_step",
]
