import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def fixed_seed():
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def attractor_states():
    """Eight Lorenz 96 states (Nx = 40) on the attractor, float32."""
    from keras_da import Lorenz96
    from keras_da.twin import random_initial_states, spin_up

    x0 = random_initial_states(8, 40, seed=3, offset=8.0)
    return np.asarray(spin_up(Lorenz96(), x0, 300))
