import keras
import numpy as np
import pytest

from keras_da import Lorenz96, lorenz96_tendency, rk4_step


def test_tendency_matches_hand_computation():
    # Nx = 5, F = 8: dx_n/dt = (x_{n+1} - x_{n-2}) x_{n-1} - x_n + F, indices modulo 5.
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    expected = np.array(
        [
            (2.0 - 4.0) * 5.0 - 1.0 + 8.0,  # n=0: x1=2, x_{-2}=x3=4, x_{-1}=x4=5
            (3.0 - 5.0) * 1.0 - 2.0 + 8.0,  # n=1: x2=3, x_{-1}=x4=5, x0=1
            (4.0 - 1.0) * 2.0 - 3.0 + 8.0,  # n=2: x3=4, x0=1, x1=2
            (5.0 - 2.0) * 3.0 - 4.0 + 8.0,  # n=3: x4=5, x1=2, x2=3
            (1.0 - 3.0) * 4.0 - 5.0 + 8.0,  # n=4: x0=1, x2=3, x3=4
        ]
    )
    np.testing.assert_allclose(np.asarray(lorenz96_tendency(x, 8.0)), expected)


def test_tendency_vanishes_at_fixed_point():
    x = np.full((3, 40), 8.0)
    np.testing.assert_allclose(np.asarray(lorenz96_tendency(x, 8.0)), 0.0, atol=1e-12)


def test_rk4_converges_at_fourth_order():
    rng = np.random.default_rng(0)
    x0 = 8.0 + rng.standard_normal(10)
    horizon = 0.2

    def integrate(num_steps):
        x = x0.copy()
        for _ in range(num_steps):
            x = np.asarray(rk4_step(lambda s: lorenz96_tendency(s, 8.0), x, horizon / num_steps))
        return x

    reference = integrate(1024)
    errors = [np.linalg.norm(integrate(n) - reference) for n in (8, 16, 32, 64)]
    # Observed orders approach 4 from below as the step shrinks.
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 3.8), orders
    assert np.all(orders < 4.2), orders


def test_layer_substeps_match_repeated_rk4():
    x = np.random.default_rng(1).standard_normal((2, 12)) + 8.0
    layer = Lorenz96(forcing=8.0, time_step=0.05, num_substeps=5, dtype="float64")
    expected = x
    for _ in range(5):
        expected = np.asarray(rk4_step(lambda s: lorenz96_tendency(s, 8.0), expected, 0.01))
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-12)


def test_layer_accepts_any_leading_shape():
    layer = Lorenz96()
    assert tuple(layer(np.ones((2, 3, 40), "float32")).shape) == (2, 3, 40)
    assert tuple(layer(np.ones((20,), "float32")).shape) == (20,)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"time_step": 0.0}, "time_step"),
        ({"time_step": float("nan")}, "time_step"),
        ({"num_substeps": 0}, "num_substeps"),
        ({"forcing": float("inf")}, "forcing"),
    ],
)
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Lorenz96(**kwargs)


def test_too_few_variables_raise():
    with pytest.raises(ValueError, match="Nx=3"):
        Lorenz96()(np.ones((2, 3), "float32"))


def test_config_and_keras_file_round_trip(tmp_path):
    layer = Lorenz96(forcing=10.0, time_step=0.02, num_substeps=3)
    clone = Lorenz96.from_config(layer.get_config())
    x = np.random.default_rng(2).standard_normal((4, 40)).astype("float32")
    np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(layer(x)))

    inputs = keras.Input((40,))
    model = keras.Model(inputs, layer(inputs))
    path = tmp_path / "l96.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
