"""Training losses of a learned filter over one truncated window.

Every loss takes the same arguments, so `LearnedFilter(loss=...)` can switch between them:

    loss(analysis_means, truths, observations, dynamics, observation_operator) -> (B,)

with `analysis_means` and `truths` of shape `(B, L, Nx)` and `observations` `(B, L, Ny)`. It
returns one value per trajectory, and the training loss is their mean over the global batch.
"""

from keras import ops


def supervised_loss(analysis_means, truths, observations, dynamics, observation_operator):
    """Mean squared error between the analysis means and the truth, averaged over the window.

    This is the loss of Bocquet et al. (Chaos 34 (2024), 091104), divided by B · L · Nx.
    """
    del observations, dynamics, observation_operator
    return ops.mean(ops.square(analysis_means - truths), axis=(1, 2))


def observation_loss(analysis_means, truths, observations, dynamics, observation_operator):
    """Semi-supervised loss: the misfit of the next observation to the forecast of the analysis.

    For k = 1 … L−1 of the window, the analysis mean x̄^a_{k−1} is forecast one cycle,
    x^f_k = M(x̄^a_{k−1}), and compared with the observation y_k:

        loss = mean over k and observations of (y_k − H x^f_k)² / r, per run,

    with r the observation error variance (missing observations are left out). The truth is
    never read. Because y_k = H x^t_k + e_k with e_k independent of x^f_k, the expected loss is
    1 + E[(H (x^t_k − x^f_k))² / r]: it is minimised by the analysis whose one-cycle forecast is
    closest to the truth in the observed variables, which needs no truth to train.
    """
    del truths
    state_dim = analysis_means.shape[-1]
    forecasts = dynamics(analysis_means[:, :-1])
    next_observations = observations[:, 1:]
    mask = observation_operator.observed_mask(next_observations)
    filled = ops.where(mask > 0, next_observations, ops.zeros_like(next_observations))
    precision = observation_operator.precision(state_dim, analysis_means.dtype)
    misfit = (filled - observation_operator(forecasts)) * mask
    total = ops.sum(ops.square(misfit) * precision, axis=(1, 2))
    return total / ops.maximum(ops.sum(mask, axis=(1, 2)), 1.0)


LOSSES = {"supervised": supervised_loss, "observation": observation_loss}
