"""The ensemble transform Kalman filter (ETKF), a deterministic square-root EnKF."""

import keras
import tensorflow as tf

from keras_da.analysis.base import AnalysisLayer
from keras_da.baselines import ensemble_space


def ensemble_transform_weights(eigenvalues, eigenvectors, projected_innovation, precision):
    """Return the ETKF mean weights w `(batch, Ne)` and symmetric transform T `(batch, Ne, Ne)`.

    With G = V diag(λ) Vᵀ and a prior precision ζ in ensemble space, the analysis minimises
    ½‖d − Sᵀ w‖² + ½ ζ ‖w‖², so w = (G + ζ I)⁻¹ S d = V diag(1/(λ + ζ)) g with g = Vᵀ S d, and
    the analysis anomalies are T A with the symmetric square root
    T = √(Ne − 1) (G + ζ I)^{-1/2}. Without inflation ζ = Ne − 1.

    Args:
        eigenvalues: λ, `(batch, Ne)`.
        eigenvectors: V, `(batch, Ne, Ne)`.
        projected_innovation: g = Vᵀ S d, `(batch, Ne)`.
        precision: ζ, a scalar or a tensor `(batch,)`.
    """
    ensemble_size = eigenvectors.shape[-1]
    precision = tf.convert_to_tensor(precision, dtype=eigenvalues.dtype)
    if precision.shape.rank == 1:
        precision = precision[:, None]
    shifted = eigenvalues + precision
    mean_weights = tf.linalg.matvec(eigenvectors, projected_innovation / shifted)
    transform = ensemble_space.eigen_function(
        eigenvectors, tf.sqrt((ensemble_size - 1) / shifted)
    )
    return mean_weights, transform


@keras.saving.register_keras_serializable(package="keras_da")
class ETKF(AnalysisLayer):
    """Ensemble transform Kalman filter with the symmetric square root.

    The analysis is computed in the Ne-dimensional ensemble space (Hunt et al. 2007): with the
    scaled observation anomalies S = H(A) R^{-1/2} and the scaled innovation
    d = R^{-1/2}(y − H x̄), the analysis mean is x̄ + Aᵀ w with w = (S Sᵀ + (Ne − 1) I)⁻¹ S d,
    and the analysis anomalies are T A with T = √(Ne − 1) (S Sᵀ + (Ne − 1) I)^{-1/2}. The
    symmetric square root keeps the analysis anomalies centred and closest to the forecast
    anomalies. For a linear model and Gaussian errors the analysis mean and sample covariance
    equal the Kalman filter's whenever the forecast ensemble's sample covariance is the
    forecast covariance. The cost grows as Ne³ + Ne² Ny per batch element.

    Multiplicative inflation multiplies the forecast anomalies by `inflation` (the forecast
    covariance by `inflation²`) before the analysis; it is applied exactly, as the ensemble-space
    prior precision ζ = (Ne − 1) / inflation².

    Args:
        observation_operator: a `LinearObservation`. Default H = I, R = I.
        inflation: factor >= 1 on the forecast anomalies. Default 1.0 (none).
        random_rotation: whether to left-multiply the analysis anomalies by a random orthogonal
            matrix U with U 1 = 1, which keeps their mean and sample covariance but mixes the
            members. Default False.
        seed: an int or None, the seed of the random rotations.

    Call arguments:
        forecast: forecast ensemble E^f, `(batch, Ne, Nx)` with Ne >= 2.
        observation: observation vector y, `(batch, Ny)`.

    Returns:
        The analysis ensemble E^a, `(batch, Ne, Nx)`.

    Example:
        >>> etkf = ETKF(inflation=1.02)
        >>> forecast = keras.random.normal((4, 20, 40), seed=0)
        >>> etkf(forecast, keras.ops.zeros((4, 40))).shape
        TensorShape([4, 20, 40])

    References:
        C. H. Bishop, B. J. Etherton and S. J. Majumdar, "Adaptive sampling with the ensemble
        transform Kalman filter. Part I: Theoretical aspects", Mon. Wea. Rev. 129 (2001),
        pp. 420–436.
        B. R. Hunt, E. J. Kostelich and I. Szunyogh, "Efficient data assimilation for
        spatiotemporal chaos: a local ensemble transform Kalman filter", Physica D 230 (2007),
        pp. 112–126.
    """

    min_ensemble_size = 2

    def __init__(
        self, observation_operator=None, inflation=1.0, random_rotation=False, seed=None, **kwargs
    ):
        super().__init__(observation_operator=observation_operator, **kwargs)
        self.inflation = ensemble_space.check_inflation(inflation)
        self.random_rotation = bool(random_rotation)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if self.random_rotation else None

    def prior_precision(self, ensemble_size):
        """Return ζ = (Ne − 1) / inflation², the ensemble-space prior precision."""
        return (ensemble_size - 1) / self.inflation**2

    def call(self, forecast, observation):
        self.check_inputs(forecast, observation)
        ensemble_size = forecast.shape[1]
        mean, anomalies = ensemble_space.split_ensemble(forecast)
        operator = self.observation_operator
        scaled_anomalies = ensemble_space.scaled_observation_anomalies(operator, anomalies)
        innovation = ensemble_space.scaled_innovation(operator, observation, mean)

        eigenvalues, eigenvectors = ensemble_space.gram_eigendecomposition(scaled_anomalies)
        projected = ensemble_space.project_innovation(scaled_anomalies, innovation, eigenvectors)
        mean_weights, transform = ensemble_transform_weights(
            eigenvalues, eigenvectors, projected, self.prior_precision(ensemble_size)
        )
        if self.random_rotation:
            rotation = ensemble_space.random_mean_preserving_rotation(
                tf.shape(forecast)[0], ensemble_size, self.seed_generator, forecast.dtype
            )
            transform = tf.linalg.matmul(rotation, transform)
        return ensemble_space.apply_weights(mean, anomalies, mean_weights, transform)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"inflation": self.inflation, "random_rotation": self.random_rotation, "seed": self.seed}
        )
        return config
