"""Mixed precision: a bfloat16 or float16 analysis network inside a float32 cycle."""

import keras
import numpy as np
import pytest
from tiny_models import tiny_filter

from keras_da import LearnedFilter, LinearObservation, Lorenz96, ResidualCNNAnalysis


@pytest.fixture(scope="module")
def bfloat16_filter():
    model = tiny_filter(mixed_precision="bfloat16")
    history = model.fit(steps_per_epoch=2, epochs=1, verbose=0).history
    return model, history


def hidden_layers(model):
    analysis = model.analysis
    return [analysis.input_conv] + [layer for block in analysis.blocks for layer in block]


def test_only_hidden_layers_compute_in_bfloat16(bfloat16_filter):
    model, _ = bfloat16_filter
    for layer in hidden_layers(model):
        assert layer.compute_dtype == "bfloat16"
        assert layer.conv.compute_dtype == "bfloat16"
        assert layer.conv.kernel.dtype == "float32"
    assert model.analysis.output_conv.compute_dtype == "float32"
    assert model.analysis.output_conv.conv.compute_dtype == "float32"
    assert model.analysis.compute_dtype == "float32"
    assert model.observation_operator.compute_dtype == "float32"
    assert model.dynamics.compute_dtype == "float32"
    assert model.pool_truth.dtype == "float32"


def test_bfloat16_analysis_keeps_float32_state(bfloat16_filter):
    model, _ = bfloat16_filter
    forecast = np.full((2, 1, 40), 8.0, "float32") + np.linspace(0, 1, 40, dtype="float32")
    analysis = model.analysis(forecast, np.full((2, 40), 8.5, "float32"))
    assert analysis.dtype == "float32"
    # Near 8, bfloat16 numbers are 0.0625 apart, and a state that went through bfloat16 would
    # lie on that grid. E^f + a_θ is added in float32, so the analysis does not.
    rounded = keras.ops.cast(keras.ops.cast(analysis, "bfloat16"), "float32")
    assert np.any(np.asarray(analysis) != np.asarray(rounded))


def test_bfloat16_training_steps_are_finite(bfloat16_filter):
    model, history = bfloat16_filter
    assert np.isfinite(history["loss"][-1])
    assert int(model.window_counter.numpy()) == 2


def test_float16_wraps_optimizer_in_loss_scaling():
    model = tiny_filter(mixed_precision="float16")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.analysis.input_conv.compute_dtype == "float16"


def test_mixed_precision_survives_keras_file(tmp_path):
    model = tiny_filter(mixed_precision="bfloat16")
    model.optimizer.build(model.trainable_variables)
    model.save(tmp_path / "filter.keras")
    loaded = keras.models.load_model(tmp_path / "filter.keras")
    assert loaded.mixed_precision == "bfloat16"
    assert loaded.analysis.input_conv.compute_dtype == "bfloat16"
    assert loaded.analysis.compute_dtype == "float32"


def test_unknown_mixed_precision_raises():
    analysis = ResidualCNNAnalysis(LinearObservation(1.0), filters=4, num_blocks=1)
    with pytest.raises(ValueError, match="mixed_precision"):
        LearnedFilter(
            Lorenz96(), analysis, 40, pool_size=32, batch_size=16, mixed_precision="float8"
        )
