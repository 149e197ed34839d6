"""Export a trained filter as a TensorFlow SavedModel with one-analysis and one-cycle functions.

The SavedModel needs TensorFlow alone to run: `tf.saved_model.load(directory)` returns an
object whose `analysis` and `cycle` functions run the trained a_θ and the forecast-analysis
cycle without importing keras_da. The same two functions are also the TensorFlow Serving
signatures `"analysis"` and `"cycle"`, each with one output called `"output_0"`, and
`"serving_default"` is `"analysis"`. This module is TensorFlow-specific.

Example:
    >>> export_filter(model, "exported/lorenz96")
    >>> served = tf.saved_model.load("exported/lorenz96")
    >>> new_ensemble = served.cycle(analysis_ensemble, observation)
"""

import logging

import keras
import tensorflow as tf

from keras_da.training.trainer import LearnedFilter

logger = logging.getLogger(__name__)


def serving_signatures(model):
    """Return the input signatures `(ensemble_spec, observation_spec)` of a filter's functions.

    The batch dimension is `None`. The ensemble size Ne, the grid size Nx and the number of
    observations Ny are those the model was trained with.
    """
    cell = model.cell
    ensemble = tf.TensorSpec((None, cell.ensemble_size, cell.state_dim), tf.float32)
    observation = tf.TensorSpec((None, cell.observation_dim), tf.float32)
    return ensemble, observation


def export_filter(model, directory, jit_compile=False):
    """Write `model`'s analysis and one full cycle as serving functions of a SavedModel.

    The SavedModel at `directory` has two functions with fixed input signatures:

    - `analysis(forecast, observation)`: the learned analysis of a forecast ensemble
      `(batch, Ne, Nx)` given observations `(batch, Ny)`; returns the analysis ensemble
      `(batch, Ne, Nx)`.
    - `cycle(analysis_ensemble, observation)`: one cycle. The dynamics forecast an analysis
      ensemble `(batch, Ne, Nx)`, then the analysis combines that forecast with observations
      `(batch, Ny)` valid at the forecast time. Returns the new analysis ensemble
      `(batch, Ne, Nx)`.

    Inputs and outputs are float32, whatever `mixed_precision` the model was trained with.

    Args:
        model: a `LearnedFilter`.
        directory: output directory of the SavedModel; created, or overwritten if it exists.
        jit_compile: whether the saved functions are compiled with XLA when they run.
            Default `False`.

    Returns:
        `directory`.
    """
    if not isinstance(model, LearnedFilter):
        raise TypeError(
            "`model` must be a keras_da LearnedFilter (for example loaded from a `.keras` file "
            f"written by `keras-da train`), received {type(model).__name__}."
        )
    cell = model.cell
    ensemble_spec, observation_spec = serving_signatures(model)

    def analysis(forecast, observation):
        return cell.analysis(forecast, observation)

    def cycle(analysis_ensemble, observation):
        _, new_ensemble = cell.forecast_and_analyse(analysis_ensemble, observation)
        return new_ensemble

    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, function in (("analysis", analysis), ("cycle", cycle)):
        archive.add_endpoint(
            name,
            tf.function(function, jit_compile=jit_compile, autograph=False),
            input_signature=[ensemble_spec, observation_spec],
        )
    archive.write_out(directory, verbose=False)
    logger.info(
        "Exported the filter to %s: analysis and cycle on ensembles (batch, %d, %d) and "
        "observations (batch, %d).",
        directory, cell.ensemble_size, cell.state_dim, cell.observation_dim,
    )
    return directory


def export_model_file(model_path, directory, jit_compile=False):
    """Load a `.keras` filter written by `keras-da train` and export it with `export_filter`."""
    model = keras.models.load_model(model_path, compile=False)
    return export_filter(model, directory, jit_compile=jit_compile)
