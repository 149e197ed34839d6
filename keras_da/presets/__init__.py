"""Named experiment setups, with every number of a twin experiment in one place.

A preset is a plain nested dict, so that it can be printed, stored in the JSON results next to
the scores, and overridden from the command line. `get_preset(name)` returns a deep copy.
Each model family keeps its presets in its own module; this module registers them.
"""

import copy

from keras_da.presets.kuramoto_sivashinsky import KURAMOTO_SIVASHINSKY_PRESETS
from keras_da.presets.lorenz96 import LORENZ96_PRESETS

PRESETS = {
    preset["name"]: preset for preset in LORENZ96_PRESETS + KURAMOTO_SIVASHINSKY_PRESETS
}
DEFAULT_PRESET = "lorenz96"


def get_preset(name=DEFAULT_PRESET):
    """Return a deep copy of the preset called `name`."""
    if name not in PRESETS:
        raise ValueError(
            f"Unknown preset {name!r}. Available presets: {', '.join(sorted(PRESETS))}."
        )
    return copy.deepcopy(PRESETS[name])


def list_presets():
    """Return `(name, description)` pairs of every preset."""
    return [(name, preset["description"]) for name, preset in sorted(PRESETS.items())]
