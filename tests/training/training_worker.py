"""Training runs in a fresh process, for tests that need a process of their own.

A process of its own is needed to split the CPU into logical devices (only possible before
TensorFlow starts), to join a multi-worker cluster, or to be killed with SIGKILL.

Usage:
    python training_worker.py RUNS_JSON

RUNS_JSON is a JSON list of runs, executed in order in this process. Each run is a dict:
    output: the run's output directory (checkpoints go to OUTPUT/backup).
    weights: path of an `.npz` file that receives, when `fit` ends, every model weight as
        "weight_<i>" in `model.weights` order and every optimizer variable as "optimizer_<i>".
    strategy: "default", "two-cpus" (MirroredStrategy over the logical CPUs /cpu:0 and /cpu:1)
        or "multi-worker" (MultiWorkerMirroredStrategy from TF_CONFIG). Default "default".
    steps, steps_per_epoch, batch_size, pool_size: overrides of the "tiny" preset.
    kill_after_steps: send SIGKILL to this process at the end of that training step
        (counted over the whole run, from 1), simulating a crash. Default: never.
    jit_compile, mixed_precision: as `train_from_preset` takes them.
The first run may also set "logical_cpus": 2 to split the CPU before TensorFlow starts.
"""

import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def split_cpu(count):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    )


def make_callbacks(run):
    import keras
    import numpy as np

    class SaveWeightsAtEnd(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            arrays = {f"weight_{i}": np.asarray(w) for i, w in enumerate(self.model.weights)}
            for i, variable in enumerate(self.model.optimizer.variables):
                arrays[f"optimizer_{i}"] = np.asarray(variable)
            np.savez(run["weights"], **arrays)

    class KillAfterSteps(keras.callbacks.Callback):
        def __init__(self, steps):
            super().__init__()
            self.steps = steps

        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.window_counter.numpy()) >= self.steps:
                os.kill(os.getpid(), signal.SIGKILL)

    callbacks = [SaveWeightsAtEnd()]
    if run.get("kill_after_steps"):
        callbacks.append(KillAfterSteps(run["kill_after_steps"]))
    return callbacks


def make_strategy(name):
    import tensorflow as tf

    if name == "two-cpus":
        return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    from keras_da.training.distribute import make_strategy as named_strategy

    return named_strategy(name)


def main(path):
    with open(path) as stream:
        runs = json.load(stream)
    if runs and runs[0].get("logical_cpus"):
        split_cpu(runs[0]["logical_cpus"])
    # Strategies first: the multi-worker one must exist before TensorFlow's runtime starts.
    strategies = [make_strategy(run.get("strategy", "default")) for run in runs]

    from keras_da.presets import get_preset
    from keras_da.training.run import train_from_preset

    for run, strategy in zip(runs, strategies):
        preset = get_preset("tiny")
        for key in ("steps", "steps_per_epoch", "batch_size", "pool_size"):
            if key in run:
                preset["training"][key] = run[key]
        train_from_preset(
            preset,
            run["output"],
            verbose=0,
            extra_callbacks=make_callbacks(run),
            strategy=strategy,
            jit_compile=run.get("jit_compile", False),
            mixed_precision=run.get("mixed_precision", "none"),
        )


if __name__ == "__main__":
    main(sys.argv[1])
