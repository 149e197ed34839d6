"""A small `LearnedFilter` shared by the training tests."""

import keras

from keras_da import LearnedFilter, LinearObservation, Lorenz96, ResidualCNNAnalysis


def tiny_filter(seed=0, jit_compile=False, mixed_precision="none", **kwargs):
    """Return a compiled filter with Nf 8, one residual block, pool 64, batch 16 and window 5."""
    keras.utils.set_random_seed(seed)
    analysis = ResidualCNNAnalysis(
        LinearObservation(1.0), filters=8, num_blocks=1, convs_per_block=2
    )
    settings = dict(pool_size=64, batch_size=16, window_length=5, spin_up_cycles=200, seed=seed)
    settings.update(kwargs)
    model = LearnedFilter(Lorenz96(), analysis, 40, mixed_precision=mixed_precision, **settings)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=jit_compile)
    return model
