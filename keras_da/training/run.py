"""Train a learned filter from a preset dict, with checkpoints that survive interruption."""

import json
import logging
import os

import keras

from keras_da.experiment import build_dynamics, build_learned_analysis, build_observation_operator
from keras_da.training.trainer import LearnedFilter

logger = logging.getLogger(__name__)


def build_learned_filter(preset):
    """Return an uncompiled `LearnedFilter` for a preset dict."""
    training = preset["training"]
    observation_operator = build_observation_operator(preset["observation"])
    return LearnedFilter(
        dynamics=build_dynamics(preset["model"]),
        analysis=build_learned_analysis(preset["network"], observation_operator),
        state_dim=preset["model"]["state_dim"],
        ensemble_size=training["ensemble_size"],
        pool_size=training["pool_size"],
        batch_size=training["batch_size"],
        window_length=training["window_length"],
        initial_spread=training["initial_spread"],
        spin_up_cycles=preset["spin_up_cycles"],
        seed=training["seed"],
    )


def make_optimizer(training):
    """Adam with a cosine decay from `learning_rate` to `final_learning_rate` over `steps`."""
    initial = training["learning_rate"]
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=initial,
        decay_steps=training["steps"],
        alpha=training["final_learning_rate"] / initial,
    )
    return keras.optimizers.Adam(learning_rate=schedule)


def train_from_preset(preset, output, tensorboard=False, verbose=1, extra_callbacks=()):
    """Train a learned filter as a preset says and save it to `output/model.keras`.

    Checkpoints go to `output/backup` after every epoch through `keras.callbacks.BackupAndRestore`
    (model weights including the trajectory pool and window counter, optimizer state, epoch); a
    rerun with the same `output` resumes from the last one. The backup directory is removed
    when training completes.

    Returns:
        The path of the saved `.keras` file.
    """
    training = preset["training"]
    steps, per_epoch = training["steps"], training["steps_per_epoch"]
    if steps % per_epoch:
        raise ValueError(
            f"`steps` ({steps}) must be a multiple of `steps_per_epoch` ({per_epoch}) so that "
            "checkpoints fall on the end of the schedule."
        )
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, "preset.json"), "w") as stream:
        json.dump(preset, stream, indent=2)

    keras.utils.set_random_seed(training["seed"])
    model = build_learned_filter(preset)
    model.compile(optimizer=make_optimizer(training), jit_compile=False)

    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(output, "backup"), delete_checkpoint=True),
        keras.callbacks.CSVLogger(os.path.join(output, "history.csv"), append=True),
        keras.callbacks.TerminateOnNaN(),
    ]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(output, "logs")))
    callbacks.extend(extra_callbacks)

    logger.info(
        "Training %s: %d steps of %d trajectories x %d cycles, pool of %d, network %s.",
        preset["name"], steps, training["batch_size"], training["window_length"],
        training["pool_size"], preset["network"],
    )
    history = model.fit(
        steps_per_epoch=per_epoch, epochs=steps // per_epoch, callbacks=callbacks, verbose=verbose
    )
    path = os.path.join(output, "model.keras")
    model.save(path)
    with open(os.path.join(output, "history.json"), "w") as stream:
        json.dump({k: [float(v) for v in vals] for k, vals in history.history.items()}, stream)
    return path
