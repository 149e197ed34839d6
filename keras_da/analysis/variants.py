"""Ablations of a_θ: a linear network and an innovation-only network.

Both keep the interface and the residual CNN layout of `ResidualCNNAnalysis`, so they are
trained and evaluated by the same code. In the published comparison on Lorenz 96 (Bocquet et
al., Chaos 34 (2024) 091104) both fall back to 3D-Var-level accuracy (aRMSE 0.384 for the
linear a_θ and 0.382 for the innovation-only â_θ, against 0.191 for a_θ), which shows that a_θ
draws its accuracy from a nonlinear use of the forecast state.
"""

import keras
from keras import ops

from keras_da.analysis.resnet import ResidualCNNAnalysis


@keras.saving.register_keras_serializable(package="keras_da")
class LinearCNNAnalysis(ResidualCNNAnalysis):
    """a_θ without activations or biases: the increment is linear in (E^f, Hᵀ R⁻¹ δ) jointly.

    Each member sees three channels: its state x_i, the ensemble mean x̄ and ζ = Hᵀ R⁻¹ δ (the
    ensemble spread channel of `ResidualCNNAnalysis` is left out because it is not linear in
    the members). The network is a stack of bias-free periodic convolutions with residual
    connections, hence a(α u + β v) = α a(u) + β a(v) exactly for any inputs u, v of
    (forecast, ζ). Note that δ = y − H x̄^f itself is affine in the forecast, so the analysis is
    affine, not linear, in (E^f, y).

    Args:
        observation_operator, filters, num_blocks, convs_per_block, kernel_size: as in
            `ResidualCNNAnalysis`. `activation` is fixed to `None`.
    """

    num_input_channels = 3
    use_bias = False

    def __init__(self, observation_operator=None, activation=None, **kwargs):
        super().__init__(observation_operator=observation_operator, activation=activation, **kwargs)

    def check_activation(self, activation):
        if activation is not None:
            raise ValueError(
                f"LinearCNNAnalysis has no activation, received activation={activation!r}."
            )

    def features(self, forecast, weighted_innovation):
        shape = ops.shape(forecast)
        mean = ops.mean(forecast, axis=1, keepdims=True)
        zeta = ops.expand_dims(weighted_innovation, axis=1)
        channels = [forecast, ops.broadcast_to(mean, shape), ops.broadcast_to(zeta, shape)]
        return ops.reshape(ops.stack(channels, axis=-1), (-1, shape[-1], 3))


@keras.saving.register_keras_serializable(package="keras_da")
class InnovationOnlyAnalysis(ResidualCNNAnalysis):
    """The simplified analysis E^a = E^f + â_θ(Hᵀ R⁻¹ δ): the network never sees the forecast.

    The increment depends on ζ = Hᵀ R⁻¹ δ only (δ is computed from the forecast mean, as in
    every analysis), and the same increment is added to every member.

    Args:
        as in `ResidualCNNAnalysis`.
    """

    num_input_channels = 1

    def features(self, forecast, weighted_innovation):
        return ops.expand_dims(weighted_innovation, axis=-1)

    def reshape_increment(self, out, forecast):
        return ops.broadcast_to(ops.expand_dims(out, axis=1), ops.shape(forecast))
