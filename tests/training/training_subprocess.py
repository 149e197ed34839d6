"""Helpers that start `training_worker.py` in fresh processes and read back their weights."""

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np

WORKER = Path(__file__).with_name("training_worker.py")


def write_runs(runs, directory):
    """Write a runs list (paths turned into strings) to a new JSON file in `directory`."""
    path = Path(directory) / f"runs-{uuid.uuid4().hex[:8]}.json"
    plain = [{k: os.fspath(v) if isinstance(v, Path) else v for k, v in run.items()} for run in runs]
    path.write_text(json.dumps(plain))
    return path


def worker_environment(tf_config=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def start_training(runs, directory, tf_config=None):
    """Start the worker on `runs` and return its `subprocess.Popen`, output captured."""
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(write_runs(runs, directory))],
        env=worker_environment(tf_config),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_training(runs, directory, timeout):
    """Run the worker on `runs` to the end; return `(return code, output)`.

    The process is killed when it runs longer than `timeout` seconds, and the test fails.
    """
    process = start_training(runs, directory)
    return finish(process, timeout)


def finish(process, timeout):
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"A training process timed out after {timeout} s:\n{output[-4000:]}")
    return process.returncode, output


def free_loopback_port():
    """Return a TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load_arrays(path, prefix):
    """Return the arrays `<prefix>_0, <prefix>_1, ...` of an `.npz` file written by the worker."""
    with np.load(path) as archive:
        count = sum(1 for name in archive.files if name.startswith(f"{prefix}_"))
        return [archive[f"{prefix}_{i}"] for i in range(count)]
