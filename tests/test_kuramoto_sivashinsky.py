"""Tests of the Kuramoto–Sivashinsky dynamics layer and its spectral ETDRK4 functions."""

import fractions
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_da.dynamics import KuramotoSivashinsky
from keras_da.dynamics.kuramoto_sivashinsky import (
    ETDRK4Coefficients,
    dealiasing_mask,
    etdrk4_coefficients,
    etdrk4_step,
    kuramoto_sivashinsky_derivative_factor,
    kuramoto_sivashinsky_linear_operator,
    kuramoto_sivashinsky_nonlinear_term,
    kuramoto_sivashinsky_wavenumbers,
    phi_functions,
)
from keras_da.experiment import build_dynamics
from keras_da.presets import get_preset

DOMAIN_LENGTH = 32 * math.pi


def smooth_initial_state(state_dim, domain_length=DOMAIN_LENGTH):
    """Return cos(x/16)(1 + sin(x/16)), the zero-mean initial condition of Kassam and Trefethen."""
    grid = np.arange(state_dim) * domain_length / state_dim
    return np.cos(grid / 16.0) * (1.0 + np.sin(grid / 16.0))


def make_integrator(layer):
    """Return `run(x, num_calls)`, which applies `layer` `num_calls` times in one traced graph."""

    @tf.function
    def run(x, num_calls):
        return tf.while_loop(lambda i, x: i < num_calls, lambda i, x: (i + 1, layer(x)), (0, x))[1]

    return lambda x, num_calls: run(tf.constant(x), tf.constant(num_calls)).numpy()


def test_phi_functions_at_zero_and_far_from_zero():
    phi1, phi2, phi3 = phi_functions(np.array([0.0, 1e-4, -60.0, 2.0]))

    np.testing.assert_allclose(phi1[0], 1.0, rtol=1e-13)
    np.testing.assert_allclose(phi2[0], 1.0 / 2.0, rtol=1e-13)
    np.testing.assert_allclose(phi3[0], 1.0 / 6.0, rtol=1e-13)
    # Taylor series at 1e-4: φ_j(z) = Σ_n z^n / (n + j)!.
    z = 1e-4
    np.testing.assert_allclose(phi1[1], 1 + z / 2 + z**2 / 6, rtol=1e-13)
    np.testing.assert_allclose(phi2[1], 1 / 2 + z / 6 + z**2 / 24, rtol=1e-13)
    np.testing.assert_allclose(phi3[1], 1 / 6 + z / 24 + z**2 / 120, rtol=1e-13)
    # Far from zero the closed forms lose nothing to cancellation.
    for index, z in ((2, -60.0), (3, 2.0)):
        np.testing.assert_allclose(phi1[index], np.expm1(z) / z, rtol=1e-13)
        np.testing.assert_allclose(phi2[index], (np.expm1(z) - z) / z**2, rtol=1e-13)
        np.testing.assert_allclose(phi3[index], (np.expm1(z) - z - z**2 / 2) / z**3, rtol=1e-13)


def test_phi_functions_match_exact_series():
    # Near 0 the closed forms cancel, so compare with Σ_n z^n / (n + j)! in exact rationals.
    points = np.linspace(-3.0, 3.0, 25)
    values = phi_functions(points)

    for order, computed in enumerate(values, start=1):
        for z, value in zip(points, computed):
            term = fractions.Fraction(1, math.factorial(order))
            exact = fractions.Fraction(0)
            for n in range(60):
                exact += term
                term *= fractions.Fraction(z) / (n + order + 1)
            assert abs(value - float(exact)) <= 1e-13 * abs(float(exact)), (order, z, value)


def test_etdrk4_exact_for_constant_forcing():
    # For v' = L v + N with constant N the exact solution is e^{Lh} v + N (e^{Lh} - 1) / L,
    # for stiff (L h = -60) and non-stiff (L h near 0) modes alike.
    linear_operator = kuramoto_sivashinsky_linear_operator(64)
    step = 0.5
    coefficients = etdrk4_coefficients(linear_operator, step)
    rng = np.random.default_rng(0)
    v = rng.standard_normal(linear_operator.shape)
    forcing = rng.standard_normal(linear_operator.shape)

    result = etdrk4_step(lambda state: forcing, v, coefficients)

    z = linear_operator * step
    safe = np.where(z == 0.0, 1.0, z)
    integral = np.where(z == 0.0, step, step * np.expm1(z) / safe)
    np.testing.assert_allclose(result, np.exp(z) * v + forcing * integral, rtol=1e-12, atol=1e-14)


def test_linear_part_matches_exact_modes():
    state_dim, step, num_steps = 128, 0.25, 8
    linear_operator = kuramoto_sivashinsky_linear_operator(state_dim)
    coefficients = etdrk4_coefficients(linear_operator, step)
    rng = np.random.default_rng(1)
    shape = linear_operator.shape
    v0 = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)

    v = v0
    for _ in range(num_steps):
        v = etdrk4_step(np.zeros_like, v, coefficients)

    k = kuramoto_sivashinsky_wavenumbers(state_dim)
    expected = np.exp((k**2 - k**4) * step * num_steps) * v0
    np.testing.assert_allclose(v, expected, rtol=1e-13, atol=1e-300)


def test_layer_small_amplitude_follows_linear_modes():
    # At amplitude 1e-8 the quadratic term is 1e-8 times smaller than the linear one, so one
    # interval of the full layer follows e^{(k² - k⁴) t} per mode: growth for k < 1, decay above.
    state_dim = 128
    layer = KuramotoSivashinsky(time_step=1.0, num_substeps=4, dtype="float64")
    grid = np.arange(state_dim) * DOMAIN_LENGTH / state_dim
    modes = (3, 10, 20)
    amplitude = 1e-8
    x = amplitude * sum(np.cos(2 * math.pi * n * grid / DOMAIN_LENGTH) for n in modes)

    result = layer(x[None])[0].numpy()

    k = kuramoto_sivashinsky_wavenumbers(state_dim)
    expected = amplitude * sum(
        np.exp(k[n] ** 2 - k[n] ** 4) * np.cos(2 * math.pi * n * grid / DOMAIN_LENGTH)
        for n in modes
    )
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-6 * amplitude)


def test_etdrk4_fourth_order_convergence():
    state_dim, duration = 64, 4.0
    x0 = smooth_initial_state(state_dim)[None]

    def solve(num_steps):
        layer = KuramotoSivashinsky(time_step=duration, num_substeps=num_steps, dtype="float64")
        return layer(x0)[0].numpy()

    reference = solve(256)
    step_counts = [8, 16, 32, 64]
    errors = np.array([np.max(np.abs(solve(n) - reference)) for n in step_counts])
    orders = np.log2(errors[:-1] / errors[1:])

    assert np.all(errors > 1e-12), f"errors {errors} too close to round-off to measure an order"
    assert np.all(orders > 3.5), f"observed orders {orders} (errors {errors}), expected about 4"
    assert np.all(orders < 4.5), f"observed orders {orders} (errors {errors}), expected about 4"


def test_float32_matches_float64():
    x0 = smooth_initial_state(128)[None]
    result64 = KuramotoSivashinsky(dtype="float64")(x0).numpy()
    result32 = KuramotoSivashinsky(dtype="float32")(x0.astype("float32"))

    assert result32.dtype == tf.float32
    np.testing.assert_allclose(result32.numpy(), result64, atol=1e-5)


@pytest.mark.parametrize("offset", [0.0, 8.0])
def test_spatial_mean_conserved(offset):
    rng = np.random.default_rng(2)
    x0 = offset + rng.standard_normal((3, 128))
    layer = KuramotoSivashinsky(dtype="float64")

    result = make_integrator(layer)(x0, 50)

    assert np.all(np.isfinite(result))
    np.testing.assert_allclose(result.mean(axis=-1), x0.mean(axis=-1), rtol=0, atol=1e-12)


def test_mean_flow_matches_plain_etdrk4():
    # The layer advects the mean by an exact phase shift. Plain ETDRK4 with small steps on the
    # full state, whose u² includes the mean, must reach the same solution.
    state_dim, duration, mean = 64, 2.0, 0.7
    x0 = mean + smooth_initial_state(state_dim)
    layer = KuramotoSivashinsky(time_step=duration, num_substeps=40, dtype="float64")

    num_steps = 200
    coefficients = etdrk4_coefficients(
        kuramoto_sivashinsky_linear_operator(state_dim), duration / num_steps
    )
    coefficients = ETDRK4Coefficients(*(tf.constant(c, tf.complex128) for c in coefficients))
    derivative_factor = tf.constant(kuramoto_sivashinsky_derivative_factor(state_dim))

    def nonlinear_term(v):
        return kuramoto_sivashinsky_nonlinear_term(v, derivative_factor, state_dim)

    v = tf.signal.rfft(tf.constant(x0))
    for _ in range(num_steps):
        v = etdrk4_step(nonlinear_term, v, coefficients)
    expected = tf.signal.irfft(v, fft_length=[state_dim]).numpy()

    np.testing.assert_allclose(layer(x0[None])[0].numpy(), expected, rtol=0, atol=1e-8)


def test_nonlinear_term_of_sine():
    # For u = sin(k x): -u u_x = -(k / 2) sin(2 k x).
    state_dim, mode = 32, 3
    grid = np.arange(state_dim) * DOMAIN_LENGTH / state_dim
    k = 2 * math.pi * mode / DOMAIN_LENGTH
    v = tf.signal.rfft(tf.constant(np.sin(k * grid)))
    derivative_factor = tf.constant(kuramoto_sivashinsky_derivative_factor(state_dim))

    result = kuramoto_sivashinsky_nonlinear_term(v, derivative_factor, state_dim)

    np.testing.assert_allclose(
        tf.signal.irfft(result, fft_length=[state_dim]).numpy(),
        -(k / 2) * np.sin(2 * k * grid),
        rtol=0,
        atol=1e-14,
    )


def test_dealiased_term_is_exact_truncated_product():
    # With the 2/3 rule the retained modes equal those of the exact (unaliased) product of the
    # truncated field, computed here on a grid four times finer.
    state_dim, fine_dim = 96, 384
    mask = dealiasing_mask(state_dim)
    assert np.flatnonzero(mask).max() == 31
    rng = np.random.default_rng(3)
    v = np.fft.rfft(rng.standard_normal((2, state_dim)))
    derivative_factor = kuramoto_sivashinsky_derivative_factor(state_dim)

    result = kuramoto_sivashinsky_nonlinear_term(
        tf.constant(v),
        tf.constant(derivative_factor),
        state_dim,
        tf.constant(mask, dtype=tf.complex128),
    ).numpy()

    fine = np.zeros((2, fine_dim // 2 + 1), dtype=complex)
    fine[:, : state_dim // 2 + 1] = v * mask * (fine_dim / state_dim)
    u_fine = np.fft.irfft(fine, n=fine_dim)
    square = np.fft.rfft(u_fine * u_fine)[:, : state_dim // 2 + 1] * (state_dim / fine_dim)
    expected = derivative_factor * square * mask
    np.testing.assert_array_equal(result[:, mask == 0], 0.0)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-10 * np.abs(expected).max())


def test_dealiased_and_aliased_agree_when_resolved():
    x0 = smooth_initial_state(128)[None]
    aliased = KuramotoSivashinsky(dtype="float64")(x0).numpy()
    dealiased = KuramotoSivashinsky(dealias=True, dtype="float64")(x0).numpy()

    np.testing.assert_allclose(dealiased, aliased, rtol=0, atol=1e-8)


def test_odd_grid_size_follows_linear_modes():
    # Odd Nx has no Nyquist mode, and a small-amplitude state still follows e^{(k² - k⁴) t}.
    state_dim = 63
    layer = KuramotoSivashinsky(time_step=0.5, num_substeps=1, dtype="float64")
    grid = np.arange(state_dim) * DOMAIN_LENGTH / state_dim
    x = 1e-8 * np.sin(2 * math.pi * 5 * grid / DOMAIN_LENGTH)

    result = layer(x[None])[0].numpy()

    k = 2 * math.pi * 5 / DOMAIN_LENGTH
    np.testing.assert_allclose(result, np.exp(0.5 * (k**2 - k**4)) * x, rtol=0, atol=1e-14)


def test_long_run_bounded_and_chaotic():
    state_dim = 128
    layer = KuramotoSivashinsky(dtype="float64")
    integrate = make_integrator(layer)
    rng = np.random.default_rng(4)
    x = integrate(rng.standard_normal((1, state_dim)), 300)

    # Leading Lyapunov exponent from two runs whose separation is renormalised to 1e-8 every
    # 5 time units (Benettin's method). Both runs go through the layer as one batch.
    separation = 1e-8
    perturbation = rng.standard_normal(x.shape)
    pair = np.concatenate([x, x + separation * perturbation / np.linalg.norm(perturbation)])
    log_growth = []
    for _ in range(40):
        pair = integrate(pair, 5)
        assert np.max(np.abs(pair)) < 10.0, "the state left the attractor's range |u| < 10"
        difference = pair[1] - pair[0]
        distance = np.linalg.norm(difference)
        log_growth.append(np.log(distance / separation))
        pair[1] = pair[0] + difference * (separation / distance)
    exponent = np.mean(log_growth) / 5.0

    assert np.std(pair[0]) > 0.5, f"the state decayed to std {np.std(pair[0]):.3g}, not chaotic"
    assert 0.03 < exponent < 0.2, f"leading Lyapunov exponent {exponent:.4f}, expected about 0.085"


def test_gradient_matches_finite_difference():
    # Training backpropagates through the forecast, so the gradient must be right, including the
    # part that flows through the mean-dependent phase shift.
    layer = KuramotoSivashinsky(domain_length=22.0, dtype="float64")
    rng = np.random.default_rng(5)
    x = tf.constant(0.3 + rng.standard_normal((1, 32)))
    weights = tf.constant(rng.standard_normal((1, 32)))
    direction = rng.standard_normal((1, 32))

    def objective(state):
        return tf.reduce_sum(weights * layer(state))

    with tf.GradientTape() as tape:
        tape.watch(x)
        value = objective(x)
    directional = np.sum(tape.gradient(value, x).numpy() * direction)
    epsilon = 1e-6
    finite_difference = (
        objective(x + epsilon * direction) - objective(x - epsilon * direction)
    ).numpy() / (2 * epsilon)

    np.testing.assert_allclose(directional, finite_difference, rtol=1e-7)


def test_spectral_operators_cached_per_grid_size():
    layer = KuramotoSivashinsky(dtype="float64")
    layer(smooth_initial_state(64)[None])
    layer(smooth_initial_state(128)[None])
    layer(smooth_initial_state(64)[None])

    assert sorted(layer._spectral_cache) == [64, 128]
    fresh = KuramotoSivashinsky(dtype="float64")(smooth_initial_state(64)[None]).numpy()
    np.testing.assert_array_equal(layer(smooth_initial_state(64)[None]).numpy(), fresh)


def test_config_round_trip():
    layer = KuramotoSivashinsky(
        domain_length=22.0, time_step=0.75, num_substeps=3, dealias=True, dtype="float64"
    )
    config = layer.get_config()
    restored = KuramotoSivashinsky.from_config(config)

    assert config["domain_length"] == 22.0
    assert config["time_step"] == 0.75
    assert config["num_substeps"] == 3
    assert config["dealias"] is True
    assert restored.get_config() == config
    x = smooth_initial_state(32, 22.0)[None]
    np.testing.assert_array_equal(restored(x).numpy(), layer(x).numpy())


def test_keras_save_load(tmp_path):
    inputs = keras.Input((64,))
    model = keras.Model(inputs, KuramotoSivashinsky(domain_length=40.0, num_substeps=3)(inputs))
    path = str(tmp_path / "ks.keras")
    model.save(path)
    loaded = keras.models.load_model(path)

    x = smooth_initial_state(64, 40.0)[None].astype("float32")
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    assert loaded.layers[-1].get_config()["domain_length"] == 40.0


def test_preset_builds_layer():
    preset = get_preset("kuramoto_sivashinsky")
    layer = build_dynamics(preset["model"])

    assert isinstance(layer, KuramotoSivashinsky)
    assert layer.domain_length == pytest.approx(32 * math.pi)
    assert layer.time_step / layer.num_substeps == 0.5
    assert preset["model"]["state_dim"] == 128


@pytest.mark.parametrize(
    "kwargs",
    [
        {"domain_length": 0.0},
        {"domain_length": -5.0},
        {"domain_length": float("inf")},
        {"domain_length": float("nan")},
        {"domain_length": True},
        {"domain_length": "32"},
        {"time_step": 0.0},
        {"num_substeps": 0},
        {"num_substeps": 1.5},
        {"num_substeps": True},
    ],
)
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        KuramotoSivashinsky(**kwargs)


def test_non_boolean_dealias_raises():
    with pytest.raises(TypeError, match="dealias"):
        KuramotoSivashinsky(dealias="yes")


def test_too_few_grid_points_raise():
    with pytest.raises(ValueError, match="Nx=3"):
        KuramotoSivashinsky()(np.zeros((2, 3), "float32"))


def test_unknown_grid_size_raises():
    layer = KuramotoSivashinsky()
    run = tf.function(layer, input_signature=[tf.TensorSpec((None, None), tf.float32)])
    with pytest.raises(ValueError, match="static grid size"):
        run.get_concrete_function()
