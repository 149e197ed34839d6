"""SavedModel export: serving functions that reproduce the Keras filter without keras_da."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_da import LinearObservation, Lorenz96
from keras_da.cli import main
from keras_da.export import export_filter
from keras_da.twin import simulate

NUM_CYCLES = 1000

# Runs in a fresh interpreter: loads the SavedModel with TensorFlow alone, filters the same
# observations from the same first ensemble, and reports whether keras_da was ever imported.
SERVING_SCRIPT = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np
import tensorflow as tf

directory, inputs, output = sys.argv[1:4]
served = tf.saved_model.load(directory)
data = np.load(inputs)
ensemble = tf.constant(data["initial_ensemble"])
trajectory = []
for observation in data["observations"]:
    ensemble = served.cycle(ensemble, tf.constant(observation))
    trajectory.append(ensemble.numpy())
first = tf.constant(data["initial_ensemble"])
analysis = served.analysis(first, tf.constant(data["observations"][0]))
np.savez(output, trajectory=np.stack(trajectory), analysis=analysis.numpy())
print(json.dumps({"keras_da_imported": any(m.split(".")[0] == "keras_da" for m in sys.modules)}))
"""


@pytest.fixture(scope="module")
def exported(graph_filter, tmp_path_factory):
    directory = tmp_path_factory.mktemp("export")
    export_filter(graph_filter, str(directory / "saved_model"))
    return directory


@pytest.fixture(scope="module")
def twin_inputs():
    rng = np.random.default_rng(5)
    truth0 = (8.0 + rng.standard_normal((3, 40))).astype("float32")
    _, observations = simulate(Lorenz96(), LinearObservation(1.0), truth0, NUM_CYCLES, seed=6)
    observations = np.transpose(np.asarray(observations), (1, 0, 2))  # (time, batch, Ny)
    initial_ensemble = truth0[:, None, :] + rng.standard_normal((3, 1, 40)).astype("float32")
    return initial_ensemble, observations


def keras_trajectory(model, initial_ensemble, observations):
    cycle = tf.function(lambda ensemble, y: model.cell.forecast_and_analyse(ensemble, y)[1])
    ensemble = tf.constant(initial_ensemble)
    trajectory = []
    for observation in observations:
        ensemble = cycle(ensemble, tf.constant(observation))
        trajectory.append(ensemble.numpy())
    return np.stack(trajectory)


def test_saved_model_reproduces_keras_over_1000_cycles(graph_filter, exported, twin_inputs):
    initial_ensemble, observations = twin_inputs
    inputs = exported / "inputs.npz"
    np.savez(inputs, initial_ensemble=initial_ensemble, observations=observations)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            SERVING_SCRIPT,
            str(exported / "saved_model"),
            str(inputs),
            str(exported / "served.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"keras_da_imported": False}

    expected = keras_trajectory(graph_filter, initial_ensemble, observations)
    with np.load(exported / "served.npz") as served:
        trajectory, analysis = served["trajectory"], served["analysis"]
    assert trajectory.shape == (NUM_CYCLES, 3, 1, 40)
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(trajectory, expected, atol=1e-6, rtol=0)
    keras_analysis = graph_filter.analysis(initial_ensemble, observations[0])
    np.testing.assert_allclose(analysis, np.asarray(keras_analysis), atol=1e-6, rtol=0)


def test_signatures_have_free_batch_dimension(exported):
    served = tf.saved_model.load(str(exported / "saved_model"))
    assert set(served.signatures) >= {"analysis", "cycle", "serving_default"}
    for name in ("analysis", "cycle"):
        specs = served.signatures[name].structured_input_signature[1]
        shapes = sorted(tuple(spec.shape.as_list()) for spec in specs.values())
        assert shapes == [(None, 1, 40), (None, 40)]
    outputs = served.signatures["cycle"](
        analysis_ensemble=tf.zeros((5, 1, 40)) + 8.0, observation=tf.zeros((5, 40)) + 8.0
    )
    assert outputs["output_0"].shape == (5, 1, 40)


def test_keras_file_still_loads(graph_filter, tmp_path):
    path = tmp_path / "filter.keras"
    graph_filter.save(path)
    loaded = keras.models.load_model(path)
    ensemble = np.full((2, 1, 40), 8.0, "float32") + np.linspace(0, 1, 40, dtype="float32")
    observation = np.full((2, 40), 8.5, "float32")
    np.testing.assert_array_equal(
        np.asarray(loaded.analysis(ensemble, observation)),
        np.asarray(graph_filter.analysis(ensemble, observation)),
    )
    assert loaded.compiled


def test_export_command(graph_filter, tmp_path, capsys):
    graph_filter.save(tmp_path / "model.keras")
    code = main(["export", str(tmp_path / "model.keras"), str(tmp_path / "exported")])
    assert code == 0
    assert (tmp_path / "exported" / "saved_model.pb").is_file()
    assert "Exported" in capsys.readouterr().out


def test_export_command_rejects_missing_model(tmp_path, capsys):
    code = main(["export", str(tmp_path / "missing.keras"), str(tmp_path / "exported")])
    assert code == 2
    assert "No model file" in capsys.readouterr().err


def test_export_rejects_other_models(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(TypeError, match="LearnedFilter"):
        export_filter(model, str(tmp_path / "exported"))
