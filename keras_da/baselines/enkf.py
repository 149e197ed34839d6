"""The stochastic ensemble Kalman filter with perturbed observations."""

import keras
import tensorflow as tf

from keras_da.analysis.base import AnalysisLayer
from keras_da.baselines import ensemble_space
from keras_da.baselines.localization import check_localization_radius, localized_gain_increments


def ensemble_space_increments(anomalies, scaled_anomalies, scaled_innovations):
    """Return K δ_j for every member with K = Aᵀ (S Sᵀ + (Ne − 1) I)⁻¹ S R^{-1/2}.

    The solve is `(Ne, Ne)`, the cheaper form when Ne <= Ny. All tensors are batched:
    A is `(batch, Ne, Nx)`, S and δ are `(batch, Ne, Ny)`, and the result is `(batch, Ne, Nx)`.
    """
    ensemble_size = anomalies.shape[1]
    gram = tf.linalg.matmul(scaled_anomalies, scaled_anomalies, transpose_b=True)
    shifted = gram + (ensemble_size - 1) * tf.eye(ensemble_size, dtype=anomalies.dtype)
    # Column j of the weights contains the coefficients of the anomalies in member j's increment.
    weights = tf.linalg.cholesky_solve(
        tf.linalg.cholesky(shifted),
        tf.linalg.matmul(scaled_anomalies, scaled_innovations, transpose_b=True),
    )
    return tf.linalg.matmul(weights, anomalies, transpose_a=True)


def observation_space_increments(anomalies, scaled_anomalies, scaled_innovations):
    """Return K δ_j for every member with K = Aᵀ S (Sᵀ S + (Ne − 1) I)⁻¹ R^{-1/2}.

    The same gain as `ensemble_space_increments`, with a `(Ny, Ny)` solve whose cost is linear
    in Ne, the cheaper form when Ne > Ny.
    """
    ensemble_size = anomalies.shape[1]
    observation_dim = scaled_anomalies.shape[-1]
    gram = tf.linalg.matmul(scaled_anomalies, scaled_anomalies, transpose_a=True)
    shifted = gram + (ensemble_size - 1) * tf.eye(observation_dim, dtype=anomalies.dtype)
    solved = tf.linalg.cholesky_solve(
        tf.linalg.cholesky(shifted), tf.linalg.matrix_transpose(scaled_innovations)
    )
    cross_covariance = tf.linalg.matmul(anomalies, scaled_anomalies, transpose_a=True)
    return tf.linalg.matrix_transpose(tf.linalg.matmul(cross_covariance, solved))


@keras.saving.register_keras_serializable(package="keras_da")
class EnKF(AnalysisLayer):
    """Stochastic EnKF: every member assimilates its own perturbed copy of the observation.

    Member i is updated as x^a_i = x^f_i + K (y + e_i − H x^f_i) with e_i ~ N(0, R) and the
    gain K = P Hᵀ (H P Hᵀ + R)⁻¹ built from the sample covariance P = Aᵀ A / (Ne − 1) of the
    (inflated) forecast anomalies A. Perturbing the observations makes the expected analysis
    covariance equal the Kalman filter's (Burgers et al. 1998); the sampling noise this adds
    decays as Ne^{-1/2}.

    Without localisation the gain is applied in ensemble space,
    K = Aᵀ (S Sᵀ + (Ne − 1) I)⁻¹ S R^{-1/2} with S = H(A) R^{-1/2}, which costs
    Ne³ + Ne² (Nx + Ny) per batch element, or in observation space when Ne > Ny, which costs
    Ny³ + Ne Ny (Nx + Ny). With `localization_radius` the sample covariance is
    tapered with the Gaspari–Cohn function of the periodic grid distance, P ← ρ ∘ P, and the
    gain is formed in state space, which costs Nx² Ne + Ny³.

    Args:
        observation_operator: a `LinearObservation`. Default H = I, R = I.
        inflation: factor >= 1 on the forecast anomalies before the analysis. Default 1.0.
        center_perturbations: whether to subtract the ensemble mean of the observation
            perturbations e_i, so that the analysis mean is the Kalman update of the forecast
            mean with the sample gain. Default False, as in Burgers et al. (1998).
        localization_radius: Gaspari–Cohn half-width c in grid points on a periodic 1-D grid
            (correlations vanish beyond 2c), or None for no localisation. Default None.
        seed: an int or None, the seed of the observation perturbations. Layers built with the
            same seed draw the same perturbations.

    Call arguments:
        forecast: forecast ensemble E^f, `(batch, Ne, Nx)` with Ne >= 2.
        observation: observation vector y, `(batch, Ny)`.

    Returns:
        The analysis ensemble E^a, `(batch, Ne, Nx)`.

    Example:
        >>> enkf = EnKF(inflation=1.05, seed=1)
        >>> forecast = keras.random.normal((4, 30, 40), seed=0)
        >>> enkf(forecast, keras.ops.zeros((4, 40))).shape
        TensorShape([4, 30, 40])

    References:
        G. Burgers, P. J. van Leeuwen and G. Evensen, "Analysis scheme in the ensemble Kalman
        filter", Mon. Wea. Rev. 126 (1998), pp. 1719–1724.
        G. Gaspari and S. E. Cohn, "Construction of correlation functions in two and three
        dimensions", Q. J. R. Meteorol. Soc. 125 (1999), pp. 723–757.
    """

    min_ensemble_size = 2

    def __init__(
        self,
        observation_operator=None,
        inflation=1.0,
        center_perturbations=False,
        localization_radius=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(observation_operator=observation_operator, **kwargs)
        self.inflation = ensemble_space.check_inflation(inflation)
        self.center_perturbations = bool(center_perturbations)
        self.localization_radius = check_localization_radius(localization_radius)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def draw_perturbations(self, batch_size, ensemble_size, observation_dim, dtype):
        """Draw scaled perturbations R^{-1/2} e_i ~ N(0, I), shape `(batch, Ne, Ny)`."""
        perturbations = keras.random.normal(
            (batch_size, ensemble_size, observation_dim), dtype=dtype, seed=self.seed_generator
        )
        if self.center_perturbations:
            perturbations -= tf.reduce_mean(perturbations, axis=1, keepdims=True)
        return perturbations

    def call(self, forecast, observation):
        self.check_inputs(forecast, observation)
        ensemble_size = forecast.shape[1]
        state_dim = forecast.shape[-1]
        operator = self.observation_operator
        forecast = ensemble_space.inflate_anomalies(forecast, self.inflation)
        mean, anomalies = ensemble_space.split_ensemble(forecast)
        scaled_anomalies = ensemble_space.scaled_observation_anomalies(operator, anomalies)
        innovation = ensemble_space.scaled_innovation(operator, observation, mean)

        # Scaled innovation of member i: R^{-1/2}(y + e_i − H x^f_i) = d + z_i − s_i.
        perturbations = self.draw_perturbations(
            tf.shape(forecast)[0], ensemble_size, operator.observation_dim(state_dim), forecast.dtype
        )
        member_innovations = innovation[:, None, :] + perturbations - scaled_anomalies

        if self.localization_radius is not None:
            increments = localized_gain_increments(
                operator, anomalies, member_innovations, self.localization_radius
            )
        elif ensemble_size <= scaled_anomalies.shape[-1]:
            increments = ensemble_space_increments(anomalies, scaled_anomalies, member_innovations)
        else:
            increments = observation_space_increments(
                anomalies, scaled_anomalies, member_innovations
            )
        return forecast + increments

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "inflation": self.inflation,
                "center_perturbations": self.center_perturbations,
                "localization_radius": self.localization_radius,
                "seed": self.seed,
            }
        )
        return config
