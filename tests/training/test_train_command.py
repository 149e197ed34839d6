"""Options of `keras-da train` for distribution, XLA, mixed precision and resuming."""

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
