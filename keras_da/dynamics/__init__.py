"""Dynamical models M as Keras layers acting on states of shape `(..., Nx)`."""

from keras_da.dynamics.base import DynamicsLayer
from keras_da.dynamics.integrators import integrate, rk4_step
from keras_da.dynamics.kuramoto_sivashinsky import KuramotoSivashinsky
from keras_da.dynamics.lorenz96 import Lorenz96, lorenz96_tendency

__all__ = [
    "DynamicsLayer",
    "KuramotoSivashinsky",
    "Lorenz96",
    "integrate",
    "lorenz96_tendency",
    "rk4_step",
]
