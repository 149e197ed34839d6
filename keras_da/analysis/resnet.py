"""The learned analysis a_θ: a residual 1-D CNN with periodic padding.

References:
    M. Bocquet, A. Farchi, T. S. Finn, C. Durand, S. Cheng, Y. Chen, I. Pasmans and A. Carrassi,
    "Accurate deep learning-based filtering for chaotic dynamics by identifying instabilities
    without an ensemble", Chaos 34 (2024), 091104.
"""

import keras
from keras import ops

from keras_da.analysis.base import AnalysisLayer

ACTIVATIONS = ("swish", "gelu", "tanh", "relu", "elu", "softplus")


@keras.saving.register_keras_serializable(package="keras_da")
class PeriodicConv1D(keras.layers.Layer):
    """A 1-D convolution over a periodic grid (the last spatial axis wraps around).

    The input is padded by wrapping `kernel_size // 2` points from each end onto the other, then
    convolved with a `'valid'` `keras.layers.Conv1D`, so the output has the input's grid size and
    circularly shifting the input shifts the output by the same amount.

    Args:
        filters: number of output channels.
        kernel_size: odd kernel width, in grid points.
        activation: activation name, or `None` for a linear map.
        use_bias: whether the convolution adds a bias.
        kernel_initializer: initializer of the kernel. Default `"glorot_uniform"`.

    Call arguments:
        x: tensor of shape `(batch, Nx, channels)`.

    Returns:
        Tensor of shape `(batch, Nx, filters)`.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                "`kernel_size` must be a positive odd integer so that the periodic padding is "
                f"symmetric, received kernel_size={kernel_size!r}."
            )
        self.filters = filters
        self.kernel_size = kernel_size
        self.activation = activation
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.conv = keras.layers.Conv1D(
            filters,
            kernel_size,
            padding="valid",
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            dtype=self.dtype_policy,
            name="conv",
        )

    def build(self, input_shape):
        padded = (input_shape[0], None, input_shape[-1])
        self.conv.build(padded)
        super().build(input_shape)

    def call(self, x):
        half = self.kernel_size // 2
        if half:
            x = ops.concatenate([x[:, -half:, :], x, x[:, :half, :]], axis=1)
        return self.conv(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    keras.initializers.get(self.kernel_initializer)
                ),
            }
        )
        return config


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, received {name}={value!r}.")


def ensemble_features(forecast, weighted_innovation):
    """Stack the per-member input channels of a_θ.

    Each member i sees four channels on the grid: its own state x_i, the ensemble mean x̄, the
    ensemble standard deviation s (zero when Ne = 1), and ζ = Hᵀ R⁻¹ δ. Members interact only
    through x̄ and s, so the map is equivariant under a permutation of the members, and the
    number of input channels does not depend on Ne.

    Args:
        forecast: `(batch, Ne, Nx)`.
        weighted_innovation: `(batch, Nx)`.

    Returns:
        Tensor of shape `(batch * Ne, Nx, 4)`.
    """
    mean = ops.mean(forecast, axis=1, keepdims=True)
    if forecast.shape[1] == 1:
        spread = ops.zeros_like(mean)
    else:
        # The floor keeps the gradient of sqrt finite where members coincide.
        variance = ops.mean(ops.square(forecast - mean), axis=1, keepdims=True)
        spread = ops.sqrt(ops.maximum(variance, 1e-12))
    shape = ops.shape(forecast)
    zeta = ops.expand_dims(weighted_innovation, axis=1)
    channels = [forecast] + [ops.broadcast_to(t, shape) for t in (mean, spread, zeta)]
    channels = ops.stack(channels, axis=-1)
    return ops.reshape(channels, (-1, shape[-1], 4))


@keras.saving.register_keras_serializable(package="keras_da")
class ResidualCNNAnalysis(AnalysisLayer):
    """The learned analysis a_θ: E^a = E^f + a_θ(E^f, Hᵀ R⁻¹ δ), δ = y − H(x̄^f).

    a_θ is a residual 1-D CNN over the periodic grid: a first periodic convolution lifts the
    input channels to `filters` channels, `num_blocks` residual blocks each apply
    `convs_per_block` periodic convolutions (with the activation) and add their input back, and
    a final linear periodic convolution returns one increment channel. The output convolution
    starts at zero, so an untrained a_θ is the free run.

    Members: each member is processed by the same network, with the ensemble mean and
    standard deviation as extra channels (see `ensemble_features`). With Ne = 1 the network sees
    the forecast state and ζ = Hᵀ R⁻¹ δ, and the spread channel is zero.

    Because every layer is a periodic convolution, the weights apply to any grid size Nx.

    Args:
        observation_operator: a `LinearObservation`. Default H = I, R = I.
        filters: Nf, channels of the hidden convolutions. Default 32.
        num_blocks: Nb, number of residual blocks. Default 2.
        convs_per_block: Nsb, convolutions inside each residual block. Default 2.
        kernel_size: f, odd kernel width in grid points. Default 5.
        activation: activation of the hidden convolutions, one of
            `("swish", "gelu", "tanh", "relu", "elu", "softplus")`. Default `"swish"`, which is
            smooth, so the implied covariance of a_θ can be differentiated with respect to the
            state.

    Call arguments:
        forecast: `(batch, Ne, Nx)`.
        observation: `(batch, Ny)`.

    Returns:
        The analysis ensemble, `(batch, Ne, Nx)`.

    Example:
        >>> analysis = ResidualCNNAnalysis(filters=8, num_blocks=1, convs_per_block=2)
        >>> Ef = keras.random.normal((4, 1, 40))
        >>> analysis(Ef, keras.random.normal((4, 40))).shape
        TensorShape([4, 1, 40])

    References:
        M. Bocquet et al., "Accurate deep learning-based filtering for chaotic dynamics by
        identifying instabilities without an ensemble", Chaos 34 (2024), 091104.
    """

    def __init__(
        self,
        observation_operator=None,
        filters=32,
        num_blocks=2,
        convs_per_block=2,
        kernel_size=5,
        activation="swish",
        **kwargs,
    ):
        super().__init__(observation_operator=observation_operator, **kwargs)
        _check_positive_int("filters", filters)
        _check_positive_int("num_blocks", num_blocks)
        _check_positive_int("convs_per_block", convs_per_block)
        self.check_activation(activation)
        self.filters = filters
        self.num_blocks = num_blocks
        self.convs_per_block = convs_per_block
        self.kernel_size = kernel_size
        self.activation = activation
        use_bias = self.use_bias
        conv = lambda n, act, name, **kw: PeriodicConv1D(  # noqa: E731
            n, kernel_size, activation=act, use_bias=use_bias, dtype=self.dtype_policy, name=name,
            **kw,
        )
        self.input_conv = conv(filters, activation, "input_conv")
        self.blocks = [
            [conv(filters, activation, f"block{b}_conv{c}") for c in range(convs_per_block)]
            for b in range(num_blocks)
        ]
        self.output_conv = conv(1, None, "output_conv", kernel_initializer="zeros")

    # Input channels of the network (see `features`) and whether convolutions add a bias.
    num_input_channels = 4
    use_bias = True
    # A missing observation contributes ζ = 0 at its location (see LinearObservation).
    supports_missing_observations = True

    def check_activation(self, activation):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"`activation` must be one of {ACTIVATIONS}, received activation={activation!r}."
            )

    def features(self, forecast, weighted_innovation):
        """Return the network input `(batch * Ne, Nx, channels)`; see `ensemble_features`."""
        return ensemble_features(forecast, weighted_innovation)

    def build(self, forecast_shape, observation_shape=None):
        features = (None, forecast_shape[-1], self.num_input_channels)
        self.input_conv.build(features)
        hidden = (None, forecast_shape[-1], self.filters)
        for block in self.blocks:
            for layer in block:
                layer.build(hidden)
        self.output_conv.build(hidden)
        super().build(forecast_shape, observation_shape)

    def increment(self, forecast, weighted_innovation):
        """Return a_θ(E^f, ζ), shape `(batch, Ne, Nx)`, for ζ = Hᵀ R⁻¹ δ of shape `(batch, Nx)`."""
        h = self.input_conv(self.features(forecast, weighted_innovation))
        for block in self.blocks:
            residual = h
            for layer in block:
                h = layer(h)
            h = h + residual
        out = self.output_conv(h)[..., 0]
        return self.reshape_increment(out, forecast)

    def reshape_increment(self, out, forecast):
        """Reshape the network output `(batch * Ne, Nx)` to the ensemble's shape."""
        return ops.reshape(out, ops.shape(forecast))

    def call(self, forecast, observation):
        self.check_inputs(forecast, observation)
        _, weighted = self.forecast_mean_and_innovation(forecast, observation)
        return forecast + self.increment(forecast, weighted)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "num_blocks": self.num_blocks,
                "convs_per_block": self.convs_per_block,
                "kernel_size": self.kernel_size,
                "activation": self.activation,
            }
        )
        return config
