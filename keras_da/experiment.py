"""Build the layers of an experiment from a preset dict."""

from keras_da.analysis import (
    FreeRun,
    InnovationOnlyAnalysis,
    LinearCNNAnalysis,
    ResidualCNNAnalysis,
)
from keras_da.dynamics import KuramotoSivashinsky, Lorenz96
from keras_da.observations import LinearObservation

# Dynamics layers by the name used in presets' "model" section.
DYNAMICS = {"lorenz96": Lorenz96, "kuramoto_sivashinsky": KuramotoSivashinsky}

# Learned analyses by the name used in presets' "network" section ("architecture" key).
LEARNED_ANALYSES = {
    "resnet": ResidualCNNAnalysis,
    "linear": LinearCNNAnalysis,
    "innovation_only": InnovationOnlyAnalysis,
}


def build_dynamics(model_config):
    """Return the dynamics layer described by a preset's "model" section."""
    config = dict(model_config)
    name = config.pop("name")
    config.pop("state_dim", None)
    if name not in DYNAMICS:
        raise ValueError(f"Unknown model {name!r}. Available models: {', '.join(sorted(DYNAMICS))}.")
    return DYNAMICS[name](**config)


def build_observation_operator(observation_config):
    """Return the `LinearObservation` described by a preset's "observation" section."""
    return LinearObservation(**observation_config)


def build_learned_analysis(network_config, observation_operator):
    """Return the learned analysis described by a preset's "network" section."""
    config = dict(network_config)
    name = config.pop("architecture", "resnet")
    if name == "linear":
        config.pop("activation", None)
    if name not in LEARNED_ANALYSES:
        raise ValueError(
            f"Unknown architecture {name!r}. Available: {', '.join(sorted(LEARNED_ANALYSES))}."
        )
    return LEARNED_ANALYSES[name](observation_operator=observation_operator, **config)


def build_free_run(observation_operator):
    return FreeRun(observation_operator=observation_operator)
