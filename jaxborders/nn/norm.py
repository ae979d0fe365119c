"""PyTorch-default BatchNorm for every model (so converted torchvision / antialiased-cnns weights behave alike)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp


def batch_norm(train: bool, name: str, dtype: Any = jnp.float32, momentum: float = 0.9, use_scale: bool = True,
               use_bias: bool = True) -> nn.BatchNorm:
  """``flax.linen.BatchNorm`` with PyTorch's defaults: running averages keep ``momentum`` = 0.9 of the old value
  (PyTorch's ``momentum=0.1`` weighs the new one), ``eps`` = 1e-5.

  PyTorch updates ``running_var`` with the unbiased batch variance, flax with the biased one (a factor
  n/(n-1), negligible for conv maps); eval-mode outputs are identical.

  Args:
    train: batch statistics (and running-average updates) when True, running averages otherwise.
    name: the module name (``bn1``; torchvision's names keep weights convertible).
    dtype: computation dtype.
    momentum: flax momentum (``1 - torch momentum``); BagNet's bottlenecks use 0.999.
    use_scale, use_bias: affine parameters (HardNet has none).

  Returns:
    An unbound-in-place ``nn.BatchNorm`` (call it inside a compact method).

  Example:
    >>> import jax
    >>> bn = batch_norm(False, 'bn')
    >>> (bn.momentum, bn.epsilon, bn.use_running_average)
    (0.9, 1e-05, True)
  """
  return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=1e-5, dtype=dtype,
                      use_scale=use_scale, use_bias=use_bias, name=name)


__all__ = ["batch_norm"]
