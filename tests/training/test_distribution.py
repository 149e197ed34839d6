"""Data-parallel training: two mirrored replicas and two workers against one device.

Every run trains the "tiny" preset (pool 64, batch 16) for 4 steps with the same seed in a
process of its own, because logical devices and a worker cluster must be set up before
TensorFlow starts.
"""

import numpy as np
import pytest
from training_subprocess import (
    finish,
    free_loopback_port,
    load_arrays,
    run_training,
    start_training,
)

# Weight names in `LearnedFilter.weights` order: the pool, its counter and ready flag come first.
POOL, POOL_ENSEMBLE, COUNTER, READY = range(4)
STEPS = {"steps": 4, "steps_per_epoch": 2}

# Replicas add partial sums in another order than one device adds the batch, so float32 results
# differ by rounding. After 4 Adam steps the network weights agree to about 3e-8 and the pool to
# about 2e-6. The tolerances leave a margin of 30.
WEIGHT_TOLERANCE = 1e-6
POOL_TOLERANCE = 5e-5


@pytest.fixture(scope="module")
def mirrored_runs(tmp_path_factory):
    """Weights after the same 4 steps on one device and on two mirrored logical CPUs."""
    directory = tmp_path_factory.mktemp("mirrored")
    runs = [
        dict(STEPS, logical_cpus=2, output=directory / "single", weights=directory / "single.npz"),
        dict(
            STEPS,
            strategy="two-cpus",
            output=directory / "mirrored",
            weights=directory / "mirrored.npz",
        ),
    ]
    code, output = run_training(runs, directory, timeout=400)
    assert code == 0, output[-4000:]
    return directory


@pytest.fixture(scope="module")
def mirrored_xla_weights(tmp_path_factory):
    """Weights after 4 steps on two mirrored logical CPUs, each replica's window under XLA."""
    directory = tmp_path_factory.mktemp("mirrored_xla")
    run = dict(
        STEPS,
        logical_cpus=2,
        strategy="two-cpus",
        jit_compile=True,
        output=directory / "run",
        weights=directory / "weights.npz",
    )
    code, output = run_training([run], directory, timeout=400)
    assert code == 0, output[-4000:]
    return load_arrays(directory / "weights.npz", "weight")


@pytest.fixture(scope="module")
def multi_worker_runs(tmp_path_factory):
    """Weights after 4 steps of two workers (one CPU each) on 127.0.0.1.

    The workers compile each replica's window with XLA, the `keras-da train` default.
    """
    directory = tmp_path_factory.mktemp("multi_worker")
    addresses = [f"127.0.0.1:{free_loopback_port()}" for _ in range(2)]
    processes = []
    for index in range(2):
        run = dict(
            STEPS,
            strategy="multi-worker",
            jit_compile=True,
            output=directory / "run",
            weights=directory / f"worker{index}.npz",
        )
        tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        processes.append(start_training([run], directory, tf_config=tf_config))
    try:
        results = [finish(process, timeout=400) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for code, output in results:
        assert code == 0, output[-4000:]
    return directory


def assert_same_training(weights, reference):
    assert len(weights) == len(reference)
    for index in (POOL, POOL_ENSEMBLE):
        np.testing.assert_allclose(weights[index], reference[index], atol=POOL_TOLERANCE, rtol=0)
    assert weights[COUNTER] == reference[COUNTER] == 4
    for weight, expected in zip(weights[READY + 1 :], reference[READY + 1 :]):
        np.testing.assert_allclose(weight, expected, atol=WEIGHT_TOLERANCE, rtol=0)


def test_mirrored_matches_single_device(mirrored_runs):
    single = load_arrays(mirrored_runs / "single.npz", "weight")
    mirrored = load_arrays(mirrored_runs / "mirrored.npz", "weight")
    assert_same_training(mirrored, single)


@pytest.mark.slow
def test_mirrored_xla_matches_single_device(mirrored_xla_weights, mirrored_runs):
    single = load_arrays(mirrored_runs / "single.npz", "weight")
    assert_same_training(mirrored_xla_weights, single)


def test_mirrored_optimizer_state_matches(mirrored_runs):
    single = load_arrays(mirrored_runs / "single.npz", "optimizer")
    mirrored = load_arrays(mirrored_runs / "mirrored.npz", "optimizer")
    assert len(single) == len(mirrored)
    for variable, expected in zip(mirrored, single):
        np.testing.assert_allclose(variable, expected, atol=WEIGHT_TOLERANCE, rtol=1e-5)


def test_mirrored_run_saves_and_cleans_up(mirrored_runs):
    assert (mirrored_runs / "mirrored" / "model.keras").is_file()
    assert not (mirrored_runs / "mirrored" / "backup").exists()


def test_workers_end_with_identical_weights(multi_worker_runs):
    first = load_arrays(multi_worker_runs / "worker0.npz", "weight")
    second = load_arrays(multi_worker_runs / "worker1.npz", "weight")
    for weight, other in zip(first, second):
        np.testing.assert_array_equal(weight, other)


def test_multi_worker_matches_single_device(multi_worker_runs, mirrored_runs):
    single = load_arrays(mirrored_runs / "single.npz", "weight")
    worker = load_arrays(multi_worker_runs / "worker0.npz", "weight")
    assert_same_training(worker, single)


def test_only_chief_writes_run_files(multi_worker_runs):
    run = multi_worker_runs / "run"
    assert (run / "model.keras").is_file()
    assert len((run / "history.csv").read_text().splitlines()) == 3
    assert not (run / "backup").exists()
