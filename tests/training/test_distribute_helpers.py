"""The helpers of keras_da.training.distribute that need no second device."""

import json

import pytest
import tensorflow as tf

from keras_da.training import distribute


def test_make_strategy_rejects_unknown_name():
    with pytest.raises(ValueError, match="multi-worker"):
        distribute.make_strategy("tpu")


def test_default_strategy_has_one_replica():
    assert distribute.make_strategy("default").num_replicas_in_sync == 1
    assert distribute.replica_position() == (0, 1)


def test_batch_must_split_over_replicas():
    assert distribute.check_replica_batch(16, 2) == 8
    with pytest.raises(ValueError, match=r"multiple of the number of replicas \(3\)"):
        distribute.check_replica_batch(16, 3)


@pytest.mark.parametrize(
    "cluster, task, chief",
    [
        ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 0}, True),
        ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 1}, False),
        ({"chief": ["c:0"], "worker": ["a:1"]}, {"type": "worker", "index": 0}, False),
        ({"chief": ["c:0"], "worker": ["a:1"]}, {"type": "chief", "index": 0}, True),
    ],
)
def test_chief_is_read_from_tf_config(monkeypatch, cluster, task, chief):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    assert distribute.is_chief() is chief


def test_process_without_tf_config_is_chief(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.is_chief()
    assert distribute.worker_path("/tmp/x/model.keras") == "/tmp/x/model.keras"


def test_non_chief_writes_to_temporary_directory(monkeypatch):
    cluster = {"worker": ["a:1", "b:2"]}
    task = {"type": "worker", "index": 1}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    path = distribute.worker_path("/shared/run/model.keras")
    assert path.endswith("model.keras")
    assert not path.startswith("/shared")
    distribute.remove_worker_path(path)
    assert not tf.io.gfile.exists(path.rsplit("/", 1)[0])


def test_single_device_dummy_dataset_is_scalar():
    dataset = distribute.dummy_dataset(tf.distribute.get_strategy())
    assert next(iter(dataset)).shape == ()
