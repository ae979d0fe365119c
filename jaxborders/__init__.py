"""jaxborders: where a convolutional network looks.

Border modes (full convolution, F-Conv), anti-aliased downsampling (BlurPool, APS) and shift/invariance
metrics as exact pure JAX functions, with Flax layers and models on top. The public API is flat::

    import jaxborders as jb
    y = jb.conv(x, w, mode='full')
    y = jb.conv(x, w, mode=('same', 'full'))   # one border mode per spatial dim
    with jb.conv_impl('xla'):                   # one conv implementation for a whole block
      y = jb.conv(x, w, mode='circular')
    y = jb.blur_pool(x, size=3, stride=2)
    y, index = jb.aps_pool(x)
"""

from jaxborders.ops import adaptive as _adaptive
from jaxborders.ops import alias_free as _alias_free
from jaxborders.ops import aps as _aps
from jaxborders.ops import filters as _filters
from jaxborders.ops import flc as _flc
from jaxborders.ops import lps as _lps
from jaxborders.ops import metrics as _metrics
from jaxborders.ops import padding as _padding
from jaxborders.ops import shifts as _shifts
from jaxborders.ops.adaptive import *  # noqa: F401,F403
from jaxborders.ops.alias_free import *  # noqa: F401,F403
from jaxborders.ops.aps import *  # noqa: F401,F403
from jaxborders.ops.filters import *  # noqa: F401,F403
from jaxborders.ops.flc import *  # noqa: F401,F403
from jaxborders.ops.lps import *  # noqa: F401,F403
from jaxborders.ops.metrics import *  # noqa: F401,F403
from jaxborders.ops.padding import *  # noqa: F401,F403
from jaxborders.ops.shifts import *  # noqa: F401,F403
from jaxborders import nn  # noqa: E402  (layers import the ops above)
from jaxborders import probe as _probe  # noqa: E402  (analysis layer: imports the models)
from jaxborders.probe import *  # noqa: E402,F401,F403

__version__ = "0.1.0"
__all__ = [*_padding.__all__, *_filters.__all__, *_aps.__all__, *_shifts.__all__, *_metrics.__all__,
           *_lps.__all__, *_adaptive.__all__, *_alias_free.__all__, *_flc.__all__, *_probe.__all__, "nn"]
