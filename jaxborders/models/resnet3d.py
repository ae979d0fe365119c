"""3D ResNet-18/34/50 for video (Hara et al., CVPR 2018; CWB's F-Conv variants; docs/models.md).

Input (N, T, H, W, C), e.g. 16×112×112 clips. Hara's layout (``kenshohara/3D-ResNets-PyTorch``
``models/resnet.py``): 3×3×3 convs, stem 7×7×7 stride (1, 2, 2) padding (3, 3, 3), MaxPool3d k3 s2 p1, stages with
stride 2 in time *and* space, global average pool, fc. Shortcut type **B** (1×1×1 conv stride 2 + BN on
projections, identity otherwise): Hara's default (``shortcut_type='B'`` in his ``ResNet`` and in CWB's copies);
type A (zero-channel padding) is not offered. Hara's ``conv1_t_size`` is 7 and his stem's temporal stride 1
(his code switches to 2 only for clips of 32+ frames; not reproduced). The parameter layout and torch names
(``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``, ``fc``) are Hara's, so
``jaxborders.convert`` loads his checkpoints.

Border modes (``conv_mode`` for H, W; ``temporal_mode`` for T):

* ``conv_mode='full'`` (default ``temporal_mode=None`` -> ``'same'`` in time): CWB ``resnet_fconv.py``, spatial-only
  F-Conv: 3×3×3 pads (1, 2, 2), stem padding (3, 6, 6), MaxPool3d k3 s2 p1 unchanged, identity shortcut pad
  (0, 2, 2), projection pad (0, 3, 3), Bottleneck pads (0, 1, 1).
* ``conv_mode='full', temporal_mode='full'``: CWB ``resnet_fconv_tem.py``: pads (2, 2, 2), stem stride (2, 2, 2)
  padding (6, 6, 6), all shortcut pads in time too.
* any other ``conv_mode``: time follows it unless ``temporal_mode`` says otherwise (see ``resnet`` for how each
  mode is built). ``antialias`` as in 2D, with filters / polyphase components over all three axes (BlurPool
  stem: MaxPool k2 s1 -> BlurPool s2, the 3D analogue of AA's).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from jaxborders.models.registry import register_model
from jaxborders.models.resnet import ResNet

_DEPTHS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3))}


class ResNet3D(ResNet):
  """``ResNet`` with ``rank=3`` (Hara et al.); see the module docstring and ``jaxborders.models.resnet.ResNet``."""

  rank: int = 3
  num_classes: int = 400  # Kinetics, Hara's default


def _make(depth: int):
  block, stages = _DEPTHS[depth]

  def build(conv_mode: str = "same", antialias: Any = None, num_classes: int = 400, dtype: Any = jnp.float32,
            temporal_mode: str | None = None) -> ResNet3D:
    return ResNet3D(block=block, stage_sizes=stages, num_classes=num_classes, conv_mode=conv_mode,
                    antialias=antialias, dtype=dtype, temporal_mode=temporal_mode)

  build.__name__ = f"resnet3d_{depth}"
  build.__doc__ = f"3D ResNet-{depth} (Hara et al.); ``temporal_mode='full'`` is CWB's temporal F-Conv."
  return register_model(f"resnet3d_{depth}")(build)


resnet3d_18 = _make(18)
resnet3d_34 = _make(34)
resnet3d_50 = _make(50)

__all__ = ["ResNet3D", "resnet3d_18", "resnet3d_34", "resnet3d_50"]
