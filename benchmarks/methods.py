"""The later shift-invariance methods side by side with BlurPool and APS: time and FLOPs of one stride-2 step.

    python -m benchmarks.methods                 # 8x56x56x64 float32, writes benchmarks/results/methods.json
    python -m benchmarks.methods --quick         # tiny smoke run
    python -m benchmarks.methods --shape 8,56,56,64 --repeats 5 --dtype bfloat16

One table, every row timed in the same process with calls interleaved round-robin (median of ``--repeats`` after
warm-up): forward, and forward+backward (the gradients of the input and of the layer's parameters for a fixed
random cotangent), plus the FLOPs XLA's cost model reports for each compiled program
(``jax.jit(f).lower(...).compile().cost_analysis()``; FFTs and gathers are counted as XLA counts them, which is
not a fair multiply-add count for them: compare the times).

Rows: ``blur_pool`` (binomial 3, reflect), ``aps_pool`` (l2), LPS (inference arg-max and training Gumbel-softmax;
scorer hidden channels = input channels // 8, as the authors' ResNet-18), adaptive anti-aliasing (3x3, 2 groups, with its BatchNorm in
inference), ideal (alias-free) downsampling, FLC pooling, and the alias-free polynomial activation (an
activation, not a downsampler: shown for its cost).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
  sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax
import jax.numpy as jnp
import numpy as np

import jaxborders as jb
from benchmarks.common import env_line, environment, fmt_ms, markdown_table, time_interleaved, write_json


def _flops(fn, *args) -> float | None:
  analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
  if isinstance(analysis, (list, tuple)):  # older jax: one dict per computation
    analysis = analysis[0] if analysis else None
  return None if not analysis or "flops" not in analysis else float(analysis["flops"])


def _layer_fn(layer, x, train: bool = False, downsampler: bool = True):
  """``(variables, x) -> y`` for a linen layer (Gumbel noise from a fixed key in training)."""
  variables = layer.init(jax.random.PRNGKey(0), x)
  rngs = {"dropout": jax.random.PRNGKey(1)}
  args = (train,) if downsampler else ()

  def apply(variables, x):
    out = layer.apply(variables, x, *args, rngs=rngs, mutable=["batch_stats"] if train else False)
    out = out[0] if train else out
    return out[0] if isinstance(out, tuple) else out

  return apply, variables


def _methods(x: jax.Array) -> dict[str, tuple[Any, Any]]:
  """name -> (f(variables, x), variables); ops without parameters get empty variables."""
  def op(f):
    return (lambda variables, x: f(x)), {}

  methods = {
      "blur_pool (binomial 3)": op(lambda x: jb.blur_pool(x, 3, 2, "binomial", "reflect")),
      "aps_pool (l2)": op(lambda x: jb.aps_pool(x)[0]),
      "lps (inference)": _layer_fn(jb.nn.LPSPool(), x),
      "lps (train, gumbel)": _layer_fn(jb.nn.LPSPool(), x, train=True),
      "adaptive 3x3, 2 groups": _layer_fn(jb.nn.AdaptiveBlurPool(size=3, groups=2), x),
      "afc ideal_downsample": op(jb.ideal_downsample),
      "flc_pool": op(jb.flc_pool),
      "alias-free poly activation": _layer_fn(jb.nn.AliasFreeActivation(), x, downsampler=False),
  }
  return methods


def bench(shape: tuple[int, ...], repeats: int, dtype) -> list[dict[str, Any]]:
  x = jnp.asarray(np.random.default_rng(0).standard_normal(shape), dtype)
  fwd, fwd_bwd, rows = {}, {}, []
  for name, (f, variables) in _methods(x).items():
    y_shape = jax.eval_shape(f, variables, x)
    g = jnp.asarray(np.random.default_rng(1).standard_normal(y_shape.shape), y_shape.dtype)

    def both(variables, x, g, f=f):
      y, vjp = jax.vjp(f, variables, x)
      return y, vjp(g)

    f_jit, b_jit = jax.jit(f), jax.jit(both)
    fwd[name] = lambda f_jit=f_jit, v=variables: jax.block_until_ready(f_jit(v, x))
    fwd_bwd[name] = lambda b_jit=b_jit, v=variables, g=g: jax.block_until_ready(b_jit(v, x, g))
    rows.append({"method": name, "out_shape": list(y_shape.shape), "flops_fwd": _flops(f, variables, x),
                 "flops_fwd_bwd": _flops(both, variables, x, g)})
  t_fwd = time_interleaved(fwd, repeats)
  t_fb = time_interleaved(fwd_bwd, repeats)
  for row in rows:
    row["fwd_ms"] = t_fwd[row["method"]]["median_ms"]
    row["fwd_bwd_ms"] = t_fb[row["method"]]["median_ms"]
  return rows


def _gflops(v: float | None) -> str:
  return "—" if v is None else f"{v / 1e6:.1f}"


def table(rows: list[dict[str, Any]]) -> str:
  header = ["method", "out shape", "fwd ms", "fwd+bwd ms", "fwd MFLOP", "fwd+bwd MFLOP"]
  body = [[r["method"], "×".join(map(str, r["out_shape"])), fmt_ms(r["fwd_ms"]), fmt_ms(r["fwd_bwd_ms"]),
           _gflops(r["flops_fwd"]), _gflops(r["flops_fwd_bwd"])] for r in rows]
  return markdown_table(header, body)


def main(argv: list[str] | None = None) -> dict[str, Any]:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--out", default="benchmarks/results/methods.json", help="JSON output path")
  p.add_argument("--quick", action="store_true", help="tiny shape, 2 repeats (smoke run)")
  p.add_argument("--repeats", type=int, default=None, help="timed calls per variant (default 5; quick 2)")
  p.add_argument("--shape", default="8,56,56,64", help="NHWC input")
  p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  args = p.parse_args(argv)
  shape = (2, 8, 8, 4) if args.quick else tuple(int(v) for v in args.shape.split(","))
  repeats = args.repeats or (2 if args.quick else 5)
  env = environment()
  rows = bench(shape, repeats, jnp.dtype(args.dtype))
  print(env_line(env))
  print(f"Input {'x'.join(map(str, shape))} {args.dtype}, stride 2, median of {repeats}:\n")
  print(table(rows))
  payload = {"environment": env, "shape": list(shape), "dtype": args.dtype, "repeats": repeats, "rows": rows}
  print(f"\nwrote {write_json(args.out, payload)}")
  return payload


if __name__ == "__main__":
  main()
