import pytest
from tiny_models import tiny_filter


@pytest.fixture(scope="session")
def graph_filter():
    """A tiny filter after 3 graph-mode steps (shared: tracing a train step takes seconds)."""
    model = tiny_filter()
    model.fit(steps_per_epoch=3, epochs=1, verbose=0)
    return model
