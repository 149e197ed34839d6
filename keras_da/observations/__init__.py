"""Observation operators H with their error covariance R."""

from keras_da.observations.linear import LinearObservation

__all__ = ["LinearObservation"]
