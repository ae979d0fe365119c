"""Model summary: parameter count, FLOPs (XLA cost analysis) and final feature-map size for an input size.

    python -m jaxborders.models.summary resnet50 --conv_mode full --size 224
    python -m jaxborders.models.summary resnet3d_18 --conv_mode full --size 112 --frames 16

FLOPs are XLA's count for one forward pass in eval mode (a multiply-add counts 2), from the compiled
executable's cost analysis (``jax.stages.Compiled.cost_analysis``); no data is run. Shapes come from
``jax.eval_shape``, so nothing is allocated.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxborders.models.common import intermediate_shapes
from jaxborders.models.registry import get_model


def _cost_flops(compiled: Any) -> float | None:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
    cost = cost[0] if cost else None
  return None if not cost or "flops" not in cost else float(cost["flops"])


def summarize(model: nn.Module, input_shape: tuple[int, ...], flops: bool = True) -> dict[str, Any]:
  """Parameter count, FLOPs per example and feature-map shapes of ``model`` for a channels-last ``input_shape``.

  Args:
    model: an unbound zoo model (``get_model(...)``).
    input_shape: (N, H, W, C) or (N, T, H, W, C).
    flops: compile the eval-mode forward pass to read XLA's FLOP count (seconds on CPU for a ResNet-50).

  Returns:
    ``{'params', 'flops' (per example, or None), 'features': {name: spatial shape} in network order,
    'final_feature_map'}``.
  """
  x = jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x)
  n_params = sum(math.prod(a.shape) for a in jax.tree_util.tree_leaves(variables.get("params", {})))
  spatial = {k: tuple(s[1:-1]) for k, s in intermediate_shapes(model, input_shape).items() if len(s) > 2}
  result = {"params": int(n_params), "flops": None, "features": spatial,
            "final_feature_map": list(spatial.values())[-1] if spatial else None}
  if flops:
    compiled = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(variables, x).compile()
    total = _cost_flops(compiled)
    result["flops"] = None if total is None else total / input_shape[0]
  return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("model", help="registered model name, e.g. resnet50")
  parser.add_argument("--conv_mode", default="same")
  parser.add_argument("--antialias", default=None, help="None, 'blur:<kind>:<size>' or 'aps'")
  parser.add_argument("--size", type=int, default=224, help="input height = width")
  parser.add_argument("--frames", type=int, default=None, help="clip length for 3D models")
  parser.add_argument("--channels", type=int, default=3)
  parser.add_argument("--num_classes", type=int, default=None)
  parser.add_argument("--no_flops", action="store_true", help="skip the compile for FLOPs")
  parser.add_argument("--json", action="store_true", help="print JSON")
  args = parser.parse_args(argv)
  kwargs: dict[str, Any] = {"conv_mode": args.conv_mode, "antialias": args.antialias}
  if args.num_classes is not None:
    kwargs["num_classes"] = args.num_classes
  model = get_model(args.model, **kwargs)
  spatial = (args.size, args.size) if args.frames is None else (args.frames, args.size, args.size)
  result = summarize(model, (1, *spatial, args.channels), flops=not args.no_flops)
  if args.json:
    print(json.dumps(result))
  else:
    label = f"{args.model} conv_mode={args.conv_mode} antialias={args.antialias} input={'x'.join(map(str, spatial))}"
    print(label)
    print(f"  params            {result['params']:,}")
    if result["flops"] is not None:
      print(f"  FLOPs (XLA)       {result['flops'] / 1e9:.3f} G per example")
    for name, shape in result["features"].items():
      print(f"  {name:<17} {'x'.join(map(str, shape))}")
  return result


if __name__ == "__main__":
  main()
