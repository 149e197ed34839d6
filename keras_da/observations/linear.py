"""Linear observation operators with diagonal observation error covariance R."""

import math

import keras
import numpy as np
from keras import ops


def _as_variance_array(variance):
    values = np.asarray(variance, dtype="float64")
    if values.ndim > 1:
        raise ValueError(
            "`variance` must be a scalar or a 1-D list with one variance per observation, "
            f"received an array of shape {values.shape}."
        )
    if values.size == 0:
        raise ValueError("`variance` must not be empty, received an empty list.")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(
            "Observation error variances must be positive and finite, received "
            f"variance={variance!r}. Pass a positive scalar or one positive value per observation."
        )
    return values


@keras.saving.register_keras_serializable(package="keras_da")
class LinearObservation(keras.layers.Layer):
    """A linear observation operator H that selects state variables, with diagonal R.

    H keeps the variables listed in `indices` (in that order), so the identity, regular
    subsampling (every k-th variable) and any fixed subset are the same operator. Because H
    only selects, Hᵀ scatters observation-space vectors back onto the grid with zeros elsewhere,
    and H Hᵀ = I.

    Args:
        variance: observation error variance: a positive scalar (R = r I) or a list with one
            positive variance per observation (R = diag(r)). Default 1.0.
        indices: state indices that are observed, or `None` to observe every variable
            (H = I for any Nx). Indices must be distinct and non-negative.
        stride: observe every `stride`-th variable starting at `offset`, for any Nx. Cannot be
            combined with `indices`.
        offset: first observed variable when `stride` is given. Default 0.
        allow_missing: if True, NaN entries of an observation vector mark missing observations
            (a per-cycle mask): their innovation is set to zero, which is the same as giving them
            an infinite error variance. If False (default), any NaN raises `ValueError`.

    Call arguments:
        x: states of shape `(..., Nx)`.

    Returns:
        H(x) of shape `(..., Ny)`.

    Example:
        >>> H = LinearObservation(variance=1.0, stride=2)
        >>> H(keras.ops.ones((3, 40))).shape
        TensorShape([3, 20])
    """

    def __init__(
        self, variance=1.0, indices=None, stride=None, offset=0, allow_missing=False, **kwargs
    ):
        # H has no weights: it computes in the dtype of its input instead of casting it.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.variance = _as_variance_array(variance)
        if indices is not None and stride is not None:
            raise ValueError(
                "Pass either `indices` or `stride`, not both: received "
                f"indices={indices!r} and stride={stride!r}."
            )
        if stride is not None and (
            isinstance(stride, bool) or not isinstance(stride, int) or stride < 1
        ):
            raise ValueError(f"`stride` must be a positive integer, received stride={stride!r}.")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"`offset` must be a non-negative integer, received offset={offset!r}.")
        if stride is not None and offset >= stride:
            raise ValueError(
                f"`offset` must be smaller than `stride`, received offset={offset} and stride={stride}."
            )
        if indices is not None:
            indices = [int(i) for i in np.asarray(indices).ravel()]
            if not indices:
                raise ValueError("`indices` must list at least one observed variable, received [].")
            if min(indices) < 0 or len(set(indices)) != len(indices):
                raise ValueError(
                    f"`indices` must be distinct non-negative integers, received indices={indices!r}."
                )
        self.indices = indices
        self.stride = stride
        self.offset = offset
        self.allow_missing = bool(allow_missing)

    @classmethod
    def random_subset(cls, num_observed, state_dim, seed, variance=1.0, **kwargs):
        """Return an operator observing a fixed random subset of `num_observed` of `state_dim` variables.

        The subset is drawn once with `numpy.random.default_rng(seed)` and stored, sorted, as
        `indices`, so it is saved with the model.
        """
        if not 1 <= num_observed <= state_dim:
            raise ValueError(
                f"`num_observed` must be between 1 and Nx={state_dim}, received {num_observed}."
            )
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(state_dim, size=num_observed, replace=False))
        return cls(variance=variance, indices=indices.tolist(), **kwargs)

    # ------------------------------------------------------------------ structure
    def observed_indices(self, state_dim):
        """Return the observed state indices for states with `state_dim` variables."""
        if self.indices is not None:
            if max(self.indices) >= state_dim:
                raise ValueError(
                    f"Observation index {max(self.indices)} is out of range for states with "
                    f"Nx={state_dim}. Use indices below Nx."
                )
            return np.asarray(self.indices, dtype="int32")
        if self.stride is not None:
            return np.arange(self.offset, state_dim, self.stride, dtype="int32")
        return np.arange(state_dim, dtype="int32")

    def observation_dim(self, state_dim):
        """Return Ny, the number of observations of a state with `state_dim` variables."""
        return len(self.observed_indices(state_dim))

    def is_identity(self, state_dim):
        return self.indices is None and (self.stride is None or self.stride == 1)

    def variances(self, state_dim):
        """Return the diagonal of R as a NumPy float64 array of length Ny."""
        num_obs = self.observation_dim(state_dim)
        if self.variance.ndim == 0:
            return np.full(num_obs, float(self.variance))
        if self.variance.shape[0] != num_obs:
            raise ValueError(
                f"`variance` lists {self.variance.shape[0]} values but H observes {num_obs} "
                f"variables of a state with Nx={state_dim}. Give one variance per observation or "
                "a scalar."
            )
        return self.variance

    def matrix(self, state_dim, dtype="float64"):
        """Return H as a dense NumPy array of shape `(Ny, Nx)`."""
        idx = self.observed_indices(state_dim)
        H = np.zeros((len(idx), state_dim), dtype=dtype)
        H[np.arange(len(idx)), idx] = 1.0
        return H

    def covariance(self, state_dim, dtype="float64"):
        """Return R as a dense NumPy array of shape `(Ny, Ny)`."""
        return np.diag(self.variances(state_dim)).astype(dtype)

    # ------------------------------------------------------------------ operators
    def call(self, x):
        if self.is_identity(x.shape[-1]):
            return x
        return ops.take(x, self.observed_indices(x.shape[-1]), axis=-1)

    def adjoint(self, v, state_dim):
        """Apply Hᵀ to observation-space vectors `v` of shape `(..., Ny)`; return `(..., Nx)`."""
        self.check_observation(v, state_dim, check_finite=False)
        if self.is_identity(state_dim):
            return v
        # Hᵀ v as a product with the 0/1 matrix H keeps the map batched and differentiable.
        scatter = ops.convert_to_tensor(self.matrix(state_dim, dtype="float32"), dtype=v.dtype)
        return ops.matmul(v, scatter)

    def precision(self, state_dim, dtype):
        """Return the diagonal of R⁻¹ as a tensor of shape `(Ny,)`."""
        return ops.convert_to_tensor(1.0 / self.variances(state_dim), dtype=dtype)

    def innovation(self, y, x):
        """Return δ = y − H(x) for observations `(..., Ny)` and states `(..., Nx)`.

        With `allow_missing`, δ is zero where y is NaN.
        """
        self.check_observation(y, x.shape[-1], check_finite=False)
        if self.allow_missing:
            missing = ops.isnan(y)
            return ops.where(missing, ops.zeros_like(y), ops.where(missing, 0.0, y) - self(x))
        return y - self(x)

    def observed_mask(self, y):
        """Return 1.0 where an observation is present and 0.0 where it is missing (NaN)."""
        if not self.allow_missing:
            return ops.ones_like(y)
        return ops.cast(ops.logical_not(ops.isnan(y)), y.dtype)

    def precision_weighted_innovation(self, y, x):
        """Return Hᵀ R⁻¹ (y − H(x)) in state space, shape `(..., Nx)`."""
        state_dim = x.shape[-1]
        delta = self.innovation(y, x)
        return self.adjoint(delta * self.precision(state_dim, x.dtype), state_dim)

    def sample_noise(self, shape, state_dim, seed, dtype="float32"):
        """Draw observation errors e ~ N(0, R) of shape `shape + (Ny,)`.

        Args:
            shape: leading (batch) shape, a tuple of ints.
            state_dim: Nx, which fixes Ny.
            seed: an int, a `keras.random.SeedGenerator`, or a stateless seed tensor of shape (2,)
                for `tf.random.stateless_normal`.
        """
        num_obs = self.observation_dim(state_dim)
        std = ops.convert_to_tensor(np.sqrt(self.variances(state_dim)), dtype=dtype)
        full_shape = tuple(shape) + (num_obs,)
        return std * _standard_normal(full_shape, seed, dtype)

    def observe(self, x, seed, dtype=None):
        """Return y = H(x) + e with e ~ N(0, R) drawn with `seed`."""
        dtype = dtype or x.dtype
        noise = self.sample_noise(tuple(x.shape[:-1]), x.shape[-1], seed, dtype)
        return self(x) + noise

    # ------------------------------------------------------------------ checks
    def check_observation(self, y, state_dim, check_finite=True):
        """Raise `ValueError` if `y` does not have Ny entries on its last axis (or is not finite).

        The finiteness check only runs on concrete (eager or NumPy) values; inside a compiled
        graph use `tf.debugging` assertions instead.
        """
        expected = self.observation_dim(state_dim)
        if y.shape[-1] is not None and y.shape[-1] != expected:
            raise ValueError(
                f"Observation vectors have {y.shape[-1]} entries on their last axis but H "
                f"observes {expected} of the Nx={state_dim} state variables. Pass observations "
                f"of shape (..., {expected})."
            )
        if check_finite:
            values = _concrete_or_none(y)
            if values is None:
                return
            invalid = np.isinf(values) if self.allow_missing else ~np.isfinite(values)
            if np.any(invalid):
                kind = "infinite" if self.allow_missing else "non-finite (NaN or inf)"
                hint = (
                    "Use NaN for a missing observation."
                    if self.allow_missing
                    else "Remove them, or create the operator with allow_missing=True and use "
                    "NaN for missing observations."
                )
                raise ValueError(
                    f"Observations contain {int(np.sum(invalid))} {kind} value(s). {hint}"
                )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.observation_dim(input_shape[-1]),)

    def get_config(self):
        config = super().get_config()
        variance = self.variance.tolist()
        config.update(
            {
                "variance": variance,
                "indices": self.indices,
                "stride": self.stride,
                "offset": self.offset,
                "allow_missing": self.allow_missing,
            }
        )
        return config


def _concrete_or_none(value):
    if isinstance(value, np.ndarray):
        return value
    import tensorflow as tf

    if isinstance(value, tf.Tensor) and not tf.executing_eagerly():
        return None  # a symbolic graph tensor has no value to check
    try:
        return np.asarray(value)
    except (TypeError, ValueError, NotImplementedError):
        return None


def _standard_normal(shape, seed, dtype):
    import tensorflow as tf

    if isinstance(seed, keras.random.SeedGenerator) or isinstance(seed, int):
        return keras.random.normal(shape, dtype=dtype, seed=seed)
    return tf.random.stateless_normal(shape, seed=seed, dtype=dtype)
