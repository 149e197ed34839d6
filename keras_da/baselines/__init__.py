"""Classical analyses with the same call signature as the learned one."""

from keras_da.baselines.three_dvar import ThreeDVar

__all__ = ["ThreeDVar"]
