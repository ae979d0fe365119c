"""Model summary: parameter count, FLOPs (XLA cost analysis) and final feature-map size for an input size.

    python -m jaxborders.models.summary resnet50 --conv_mode full --size 224
    python -m jaxborders.models.summary resnet3d_18 --conv_mode full --size 112 --frames 16
    python -m jaxborders.models.summary --all --models "resnet18,vgg*" --size 64 --markdown docs/_generated/model_zoo.md

``--all`` tabulates every registered model (or the ``--models`` patterns) × ``--conv_modes`` × ``--antialias_list``
with the best wall time of ``--repeats`` batch-1 forward passes (``docs/models.md`` includes the files it writes).

FLOPs are XLA's count for one forward pass in eval mode (a multiply-add counts 2), from the compiled
executable's cost analysis (``jax.stages.Compiled.cost_analysis``); no data is run. Shapes come from
``jax.eval_shape``, so nothing is allocated.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import sys
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxborders.models.common import intermediate_shapes
from jaxborders.models.registry import get_model, list_models


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
    A dict with keys ``params``, ``flops`` (per example, or None), ``features`` (``{name: spatial shape}`` in
    network order) and ``final_feature_map``.
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


def time_forward(model: nn.Module, input_shape: tuple[int, ...], repeats: int = 3) -> dict[str, float | None]:
  """XLA FLOPs per example and the best wall time (ms) of ``repeats`` eval-mode forward passes.

  The variables are zeros of the initialised shapes (``jax.eval_shape``): timing does not depend on their values,
  and no initialisation has to be compiled. One compile serves both the FLOP count and the timed calls. The
  minimum, not the median, of the calls is reported: on a shared machine other processes only ever add time.
  """
  x_spec = jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32)
  shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x_spec)
  variables = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
  x = jnp.zeros(input_shape, jnp.float32)
  compiled = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(variables, x).compile()
  total = _cost_flops(compiled)
  jax.block_until_ready(compiled(variables, x))  # warm-up: first-call allocations
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(compiled(variables, x))
    times.append((time.perf_counter() - start) * 1e3)
  return {"flops": None if total is None else total / input_shape[0], "ms": min(times)}


def _input_shape(model: nn.Module, size: int, frames: int, channels: int | None) -> tuple[int, ...]:
  """Batch-1 input of ``size`` (and ``frames`` for 3D models), raised to the model's minimum where it is larger;
  the model's own example input gives the channel count unless ``channels`` is set."""
  # The zoo's convention (tests/test_models_all.py): models without these methods take (N, 32, 32, 3) and up.
  example = model.example_input_shape(batch=1) if hasattr(model, "example_input_shape") else (1, 32, 32, 3)
  minimum = tuple(model.min_input_size()) if hasattr(model, "min_input_size") else tuple(example[1:-1])
  wanted = (size, size) if len(minimum) == 2 else (frames, size, size)
  spatial = tuple(max(w, m) for w, m in zip(wanted, minimum))
  return (1, *spatial, example[-1] if channels is None else channels)


def zoo_rows(patterns: list[str], conv_modes: list[str], antialiases: list[str], size: int, frames: int,
             channels: int | None = None, repeats: int = 3, log=print, on_row=None) -> list[dict[str, Any]]:
  """One row per registered model (matching any of ``patterns``) × conv mode × antialias that the model accepts.

  A combination a family does not offer (its constructor raises ``ValueError``) is left out and logged.
  ``on_row(rows, pending)`` is called after every row with the number of combinations still to try (the CLI
  rewrites its markdown file: a long run keeps its progress). The loop runs antialias-major, so a stopped run has
  every model's plain rows first. Each row's ``rank`` is its (conv mode, antialias) position in the request.
  """
  names = sorted({n for p in patterns for n in list_models() if fnmatch.fnmatch(n, p)})
  combinations = [(name, mode, aa) for aa in antialiases for name in names for mode in conv_modes]
  rows: list[dict[str, Any]] = []
  for tried, (name, conv_mode, antialias) in enumerate(combinations, 1):
    try:
      model = get_model(name, conv_mode=conv_mode, antialias=None if antialias == "none" else antialias)
      shape = _input_shape(model, size, frames, channels)
      info = summarize(model, shape, flops=False)
    except (ValueError, TypeError) as e:
      log(f"  skipped {name} conv_mode={conv_mode} antialias={antialias}: {str(e).splitlines()[0][:100]}")
      continue
    cost = time_forward(model, shape, repeats)
    rows.append({"model": name, "conv_mode": conv_mode, "antialias": antialias, "input": shape[1:],
                 "params": info["params"], "flops": cost["flops"], "ms": cost["ms"],
                 "final_feature_map": info["final_feature_map"],
                 "rank": (conv_modes.index(conv_mode), antialiases.index(antialias))})
    log(f"  {name:<14} {conv_mode:<9} {antialias:<16} {cost['flops'] or 0:>16,.0f} FLOPs {cost['ms']:8.1f} ms")
    if on_row is not None:
      on_row(rows, len(combinations) - tried)
  return rows


def zoo_markdown(rows: list[dict[str, Any]], command: str, pending: int = 0) -> str:
  """A markdown table of ``zoo_rows``, sorted by model, then by the requested conv mode and antialias order;
  FLOPs and time also relative to the model's first row. ``pending`` > 0 marks a command that did not finish."""
  device = jax.devices()[0]
  where = f"{os.cpu_count()}-core CPU" if device.platform == "cpu" else f"{device.platform.upper()} {device.device_kind}"
  status = f" **Incomplete: {pending} combinations were not measured (the command was stopped).**" if pending else ""
  lines = [f"Generated by `{command}` (batch 1, float32, {where}; ms = best of the timed forward passes after "
           f"one warm-up call; × = relative to the model's first row).{status}", "",
           "| model | conv_mode | antialias | input | params | GFLOPs | × | final map | ms | × |",
           "|---|---|---|---|---:|---:|---:|---|---:|---:|"]
  base: dict[str, dict[str, Any]] = {}
  for r in sorted(rows, key=lambda r: (r["model"], r.get("rank", (0, 0)))):
    b = base.setdefault(r["model"], r)
    gflops = "n/a" if r["flops"] is None else f"{r['flops'] / 1e9:.3f}"
    ratio = "n/a" if r["flops"] is None or not b["flops"] else f"{r['flops'] / b['flops']:.2f}"
    fmap = "x".join(map(str, r["final_feature_map"] or ()))
    lines.append(f"| {r['model']} | {r['conv_mode']} | {r['antialias']} | {'x'.join(map(str, r['input']))} | "
                 f"{r['params']:,} | {gflops} | {ratio} | {fmap} | {r['ms']:.1f} | {r['ms'] / b['ms']:.2f} |")
  return "\n".join(lines) + "\n"


def main_all(args: argparse.Namespace, argv: list[str] | None) -> list[dict[str, Any]]:
  """``--all``: the model-zoo table (printed, and written to ``--markdown`` if given)."""
  command = "python -m jaxborders.models.summary " + " ".join(sys.argv[1:] if argv is None else argv)

  def write(rows: list[dict[str, Any]], pending: int = 0) -> None:
    if args.markdown:
      with open(args.markdown, "w") as f:
        f.write(zoo_markdown(rows, command, pending))

  rows = zoo_rows(args.models.split(","), args.conv_modes.split(","), args.antialias_list.split(","), args.size,
                  args.frames or 8, args.channels_all, args.repeats, on_row=write)
  write(rows)
  print(zoo_markdown(rows, command))
  return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("model", nargs="?", help="registered model name, e.g. resnet50 (omit with --all)")
  parser.add_argument("--conv_mode", default="same")
  parser.add_argument("--antialias", default=None, help="None, 'blur:<kind>:<size>' or 'aps'")
  parser.add_argument("--size", type=int, default=224, help="input height = width")
  parser.add_argument("--frames", type=int, default=None, help="clip length for 3D models")
  parser.add_argument("--channels", type=int, default=3)
  parser.add_argument("--num_classes", type=int, default=None)
  parser.add_argument("--no_flops", action="store_true", help="skip the compile for FLOPs")
  parser.add_argument("--json", action="store_true", help="print JSON")
  parser.add_argument("--all", action="store_true", help="table of every model x --conv_modes x --antialias_list")
  parser.add_argument("--models", default="*", help="--all: comma-separated name patterns, e.g. 'resnet*,vgg13'")
  parser.add_argument("--conv_modes", default="same,full", help="--all: comma-separated border modes")
  parser.add_argument("--antialias_list", default="none,blur:triangle:3,aps", help="--all: comma-separated specs")
  parser.add_argument("--channels_all", type=int, default=None, help="--all: input channels (default: per model)")
  parser.add_argument("--repeats", type=int, default=3, help="--all: timed forward passes per row")
  parser.add_argument("--markdown", default=None, help="--all: also write the table to this file")
  args = parser.parse_args(argv)
  if args.all:
    return {"rows": main_all(args, argv)}
  if args.model is None:
    parser.error("give a model name, or --all")
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
