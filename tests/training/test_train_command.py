"""Options of `keras-da train` for distribution, XLA, mixed precision and resuming."""

import keras
import pytest

from keras_da.cli import build_parser, main


def test_deployment_options_parse():
    args = build_parser().parse_args(
        ["train", "--strategy", "multi-worker", "--no-jit-compile", "--mixed-precision", "bfloat16"]
    )
    assert args.strategy == "multi-worker"
    assert args.jit_compile is False
    assert args.mixed_precision == "bfloat16"


def test_deployment_defaults():
    args = build_parser().parse_args(["train"])
    assert args.strategy == "default"
    assert args.jit_compile is True
    assert args.mixed_precision == "none"


@pytest.mark.parametrize("option", [["--strategy", "tpu"], ["--mixed-precision", "float8"]])
def test_unknown_choices_are_rejected(option):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", *option])


def test_existing_backup_needs_resume(tmp_path, capsys):
    (tmp_path / "backup").mkdir()
    code = main(["train", "--preset", "tiny", "--output", str(tmp_path)])
    assert code == 2
    assert "--resume" in capsys.readouterr().err


def test_steps_per_execution_runs_every_step(tmp_path):
    from keras_da.presets import get_preset
    from keras_da.training.run import train_from_preset

    preset = get_preset("tiny")
    preset["training"].update({"steps": 20, "steps_per_epoch": 10})
    path = train_from_preset(preset, str(tmp_path), verbose=0, jit_compile=False, steps_per_execution=5)
    model = keras.models.load_model(path)
    assert int(model.window_counter.numpy()) == 20


def test_steps_per_execution_must_divide_epoch(tmp_path):
    code = main([
        "train", "--preset", "tiny", "--output", str(tmp_path / "run"), "--steps-per-execution", "3",
    ])
    assert code == 2
    assert not (tmp_path / "run" / "model.keras").exists()
