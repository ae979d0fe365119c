"""Pure JAX ops (no Flax): border modes, anti-aliased downsampling, shifts and invariance metrics."""

from jaxborders.ops.adaptive import *  # noqa: F401,F403
from jaxborders.ops.alias_free import *  # noqa: F401,F403
from jaxborders.ops.aps import *  # noqa: F401,F403
from jaxborders.ops.filters import *  # noqa: F401,F403
from jaxborders.ops.flc import *  # noqa: F401,F403
from jaxborders.ops.lps import *  # noqa: F401,F403
from jaxborders.ops.metrics import *  # noqa: F401,F403
from jaxborders.ops.padding import *  # noqa: F401,F403
from jaxborders.ops.shifts import *  # noqa: F401,F403
