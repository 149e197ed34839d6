"""Training of learned analyses through the forecast–analysis cycle."""

from keras_da.training.trainer import LearnedFilter

__all__ = ["LearnedFilter"]
