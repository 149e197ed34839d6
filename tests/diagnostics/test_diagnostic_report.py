import json
import os

import numpy as np
import pytest
from diagnostic_layers import (
    LinearCovarianceAnalysis,
    StateDependentCovarianceAnalysis,
    circulant_sensitivity_tensor,
)

from keras_da import LinearObservation, Lorenz96, ResidualCNNAnalysis
from keras_da.baselines import ETKF
from keras_da.cli import main
from keras_da.diagnostics import (
    DiagnosticSettings,
    ensemble_covariance,
    filter_trajectory,
    format_summary_table,
    run_diagnostics,
)
from keras_da.diagnostics.report import sensitivity_diagnostic
from keras_da.evaluation import initial_ensemble, make_twin_experiment, run_filter

STATE_DIM = 8
DIAGNOSTIC_FILES = ("bias", "implied_gain", "bures_wasserstein", "eigenspectra", "sensitivity")


def small_network(ensemble_size):
    analysis = ResidualCNNAnalysis(LinearObservation(1.0), filters=4, num_blocks=1, convs_per_block=1)
    analysis.build((None, ensemble_size, STATE_DIM))
    rng = np.random.default_rng(0)
    # Small weights keep the untrained increments small, so the filter stays finite.
    for weight in analysis.weights:
        weight.assign(0.05 * rng.standard_normal(weight.shape).astype("float32"))
    return analysis


def tiny_settings():
    return DiagnosticSettings(
        num_cycles=12, burn_in=4, spin_up_cycles=20, num_samples=20, gain_states=2,
        sensitivity_states=2, enkf_size=4, enkf_inflation=1.05,
    )


def test_run_diagnostics_on_known_linear_analysis(tmp_path):
    # a(x, ζ) = 0.5 ζ: no bias, Pᵃ = 0.5 I everywhere, and no dependence on the state.
    analysis = LinearCovarianceAnalysis(0.5 * np.eye(STATE_DIM))
    settings = tiny_settings()

    summary = run_diagnostics(Lorenz96(), analysis, STATE_DIM, str(tmp_path), settings)

    for name in DIAGNOSTIC_FILES:
        assert os.path.isfile(tmp_path / f"{name}.json"), name
        assert os.path.isfile(tmp_path / f"{name}.png"), name
    with open(tmp_path / "summary.json") as handle:
        stored = json.load(handle)
    assert stored["bures_wasserstein"] == summary["bures_wasserstein"]
    assert len(json.loads((tmp_path / "bias.json").read_text())["series"]) == 12
    assert summary["bias"]["mean"] == 0.0
    assert summary["implied_gain"]["gain_relative_difference_mean"] < 1e-5
    # d(0.5 I, σ² I) = √Nx |√0.5 − σ|.
    expected = np.sqrt(STATE_DIM) * abs(np.sqrt(0.5) - settings.reference_std)
    distances = summary["bures_wasserstein"]
    assert distances["implied_reference_mean"] == pytest.approx(expected, rel=1e-6)
    assert summary["sensitivity"]["max_abs"] == 0.0
    assert "d²/Nx, Pᵃ_θ vs Pᵃ_EnKF" in format_summary_table(summary)


def test_run_diagnostics_on_network_ensemble(tmp_path, caplog):
    summary = run_diagnostics(
        Lorenz96(), small_network(ensemble_size=3), STATE_DIM, str(tmp_path), tiny_settings(),
        ensemble_size=3, make_plots=False,
    )

    assert "sensitivity" not in summary
    assert "Skipping the sensitivity diagnostic" in caplog.text
    assert not os.path.exists(tmp_path / "bias.png")
    assert summary["filters"]["enkf"]["ensemble_size"] == 4
    assert summary["implied_gain"]["jacobian_chain_rule_max_gap"] < 1e-6
    assert summary["implied_gain"]["gain_relative_difference_small_innovations"] < 1e-2
    for value in summary["bures_wasserstein"].values():
        assert np.isfinite(value)


def test_sensitivity_diagnostic_on_circulant_map(tmp_path):
    pattern = np.zeros((STATE_DIM, STATE_DIM))
    pattern[1, 0], pattern[0, -1] = 2.0, -1.0  # offsets (p, q) = (1, 0) and (0, −1)
    analysis = StateDependentCovarianceAnalysis(circulant_sensitivity_tensor(pattern))
    states = np.random.default_rng(1).standard_normal((3, STATE_DIM))

    summary = sensitivity_diagnostic(analysis, states, tiny_settings(), str(tmp_path), True)

    assert summary["max_abs"] == pytest.approx(2.0, rel=1e-6)
    assert summary["peak_offsets"] == {"zeta": 1, "state": 0}
    assert summary["share_within_radius"]["2"] == pytest.approx(1.0)
    assert os.path.isfile(tmp_path / "sensitivity.png")


def test_settings_reject_too_few_samples():
    settings = DiagnosticSettings(num_samples=STATE_DIM)
    with pytest.raises(ValueError, match="num_samples"):
        settings.check(STATE_DIM, STATE_DIM)


def test_trajectory_matches_evaluation_filter():
    operator = LinearObservation(1.0)
    analysis = ETKF(operator, inflation=1.05)
    twin = make_twin_experiment(Lorenz96(), operator, STATE_DIM, 2, 15, 20, seed=3)
    start = initial_ensemble(twin, 5, 1.0, seed=0)

    forecasts, analyses = filter_trajectory(Lorenz96(), analysis, twin.observations, start)
    means = run_filter(Lorenz96(), analysis, twin, ensemble_size=5, seed=0)

    assert forecasts.shape == analyses.shape == (2, 15, 5, STATE_DIM)
    np.testing.assert_allclose(analyses.mean(axis=2), means, atol=1e-4)
    np.testing.assert_allclose(forecasts[:, 1:], np.asarray(Lorenz96()(analyses[:, :-1])), atol=1e-4)


def test_ensemble_covariance_matches_numpy():
    ensembles = np.random.default_rng(0).standard_normal((3, 6, 4))
    expected = np.stack([np.cov(members, rowvar=False) for members in ensembles])
    np.testing.assert_allclose(ensemble_covariance(ensembles), expected, atol=1e-12)


def test_diagnose_command_reports_missing_model(tmp_path, capsys):
    missing = str(tmp_path / "absent.keras")
    assert main(["diagnose", missing, "--output", str(tmp_path), "--num-cycles", "5"]) == 2
    assert "No model file" in capsys.readouterr().err


def test_diagnose_command_options_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["diagnose", "--help"])
    text = capsys.readouterr().out
    for flag in ("--num-cycles", "--num-samples", "--seed", "--enkf-method", "--output"):
        assert flag in text
