"""Op benchmarks: ``jaxborders.conv`` per border mode and ``blur_pool`` against their plain baselines.

    python -m benchmarks.ops                 # full run (32x56x56x256 blur input), writes benchmarks/results/ops.json
    python -m benchmarks.ops --quick         # tiny smoke run
    python benchmarks/ops.py --out /tmp/ops.json

Two tables, every row timed side by side in one process (calls interleaved round-robin, median of
``--repeats`` after warm-up):

1. ``conv`` per mode (valid, same, circular, reflect, replicate, full) vs plain
   ``lax.conv_general_dilated(padding='SAME')``, forward and forward+backward (grads of input and kernel).
2. ``blur_pool`` (sizes 3/4/5, binomial, reflect, stride 2) vs a PyTorch BlurPool written the usual way
   (``ReflectionPad2d`` + depthwise ``conv2d(groups=C)``, NCHW) on the same data, forward and forward+backward.
   Target (issue 2): ``blur_pool`` no slower than the PyTorch one (ratio <= 1).
3. ``conv`` per implementation (``impl='xla'`` / ``'im2col'`` / ``'auto'``) per mode, forward and
   forward+backward, on a Red-Green layer and two ResNet layers: the table behind ``jaxborders.auto_conv_path``.
4. ``--blur-vjp-compare``: ``blur_pool`` forward+backward with today's linear primitives (forward mode allowed)
   against the former custom VJP (reverse mode only) built from the same forward and adjoint passes, and the
   ``jax.jvp`` cost.

Forward+backward is one call that returns the output and the input gradient for a fixed random cotangent
(so the forward cannot be dead-code eliminated); in PyTorch ``y = f(x); y.backward(g)``.
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
from jax import lax

import jaxborders as jb
from benchmarks.common import (env_line, environment, fmt_ms, fmt_ratio, markdown_table, time_interleaved,
                               write_json)

CONV_MODES = ("valid", "same", "circular", "reflect", "replicate", "full", "partial")
IMPL_MODES = ("same", "circular", "full", "partial")
# (name, NHWC input, C_out, stride): the Red-Green net's strided 3x3 conv (microbatch 10, 32x32 as in
# benchmarks/redgreen.py) and ResNet-18 layer1 / layer2-entry convs at 56x56 (batch 8).
IMPL_SHAPES = (("Red-Green conv2", (10, 32, 32, 32), 32, 2), ("ResNet layer1", (8, 56, 56, 64), 64, 1),
               ("ResNet layer2.0", (8, 56, 56, 64), 128, 2))


def _block(tree: Any) -> Any:
  return jax.block_until_ready(tree)


def _fwd_bwd(f, *args):
  """``args -> (f(args), grads of <f(args), g>)``, jitted, for a fixed random cotangent ``g``.

  ``g`` is passed as an argument, not closed over: a constant cotangent lets XLA constant-fold the whole
  backward pass at compile time (minutes, and then nothing left to time).
  """
  out_shape = jax.eval_shape(f, *args)
  g = jnp.asarray(np.random.default_rng(1).standard_normal(out_shape.shape), out_shape.dtype)

  @jax.jit
  def run(g, *a):
    y, vjp = jax.vjp(f, *a)
    return y, vjp(g)

  return lambda *a: run(g, *a)


def bench_conv(shape: tuple[int, ...], cout: int, k: int, repeats: int, dtype) -> list[dict[str, Any]]:
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(shape), dtype)
  w = jnp.asarray(rng.standard_normal((k, k, shape[-1], cout)) / np.sqrt(k * k * shape[-1]), dtype)
  variants = {"lax SAME": lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))}
  for mode in CONV_MODES:
    variants[mode] = lambda x, w, mode=mode: jb.conv(x, w, mode)
  fns = {}
  for name, f in variants.items():
    fwd, fb = jax.jit(f), _fwd_bwd(f, x, w)
    fns[f"{name}/fwd"] = lambda fwd=fwd: _block(fwd(x, w))
    fns[f"{name}/fb"] = lambda fb=fb: _block(fb(x, w))
  times = time_interleaved(fns, repeats)
  rows = []
  for name, f in variants.items():
    cost = jax.jit(f).lower(x, w).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    rows.append({"op": "conv", "variant": name, "out_shape": list(jax.eval_shape(f, x, w).shape),
                 "flops": float(cost.get("flops", float("nan"))) if cost else None,
                 "fwd": times[f"{name}/fwd"], "fwd_bwd": times[f"{name}/fb"]})
  return rows


def _torch_blur(size: int, channels: int, taps: np.ndarray):
  import torch
  t = torch.tensor(taps, dtype=torch.float32)
  kernel = (t[:, None] * t[None, :])[None, None].repeat(channels, 1, 1, 1)
  # antialiased_cnns.BlurPool: pad ((f-1)//2, ceil((f-1)/2)) on each side, depthwise conv, stride 2.
  pad = torch.nn.ReflectionPad2d(((size - 1) // 2, size // 2, (size - 1) // 2, size // 2))
  return lambda x: torch.nn.functional.conv2d(pad(x), kernel, stride=2, groups=channels)


def bench_blur(shape: tuple[int, ...], sizes: list[int], repeats: int, use_torch: bool, dtype) -> list[dict[str, Any]]:
  rng = np.random.default_rng(0)
  x_np = rng.standard_normal(shape).astype(np.float32)
  x = jnp.asarray(x_np, dtype)
  rows = []
  for size in sizes:
    f = lambda x, size=size: jb.blur_pool(x, size=size, stride=2, kind="binomial", pad_mode="reflect")
    fwd, fb = jax.jit(f), _fwd_bwd(f, x)
    fns = {"jax/fwd": lambda: _block(fwd(x)), "jax/fb": lambda: _block(fb(x))}
    max_diff = None
    if use_torch:
      import torch
      tf = _torch_blur(size, shape[-1], jb.filter_taps("binomial", size))
      xt = torch.from_numpy(x_np.transpose(0, 3, 1, 2).copy())
      xg = xt.clone().requires_grad_(True)
      # The same cotangent as _fwd_bwd's (seed 1), in NCHW.
      g = np.random.default_rng(1).standard_normal(jax.eval_shape(f, x).shape).astype(np.float32)
      gt = torch.from_numpy(g.transpose(0, 3, 1, 2).copy())

      def torch_fwd():
        with torch.no_grad():
          return tf(xt)

      def torch_fb():
        y = tf(xg)
        y.backward(gt)
        xg.grad = None
        return y

      fns["torch/fwd"] = torch_fwd
      fns["torch/fb"] = torch_fb
      max_diff = float(np.abs(np.asarray(fwd(x), np.float32) - torch_fwd().numpy().transpose(0, 2, 3, 1)).max())
    times = time_interleaved(fns, repeats)
    rows.append({"op": "blur_pool", "size": size, "in_shape": list(shape),
                 "out_shape": list(jax.eval_shape(f, x).shape), "max_abs_diff_vs_torch": max_diff,
                 **{k.replace("/", "_"): v for k, v in times.items()}})
  return rows


def bench_impls(shapes, modes, repeats: int, dtype) -> list[dict[str, Any]]:
  """Every impl side by side (interleaved) per (shape, mode); forward and forward+backward (input and kernel)."""
  rows = []
  for name, shape, cout, stride in shapes:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(shape), dtype)
    w = jnp.asarray(rng.standard_normal((3, 3, shape[-1], cout)) / np.sqrt(9 * shape[-1]), dtype)
    for mode in modes:
      fns = {}
      for impl in jb.IMPLS:
        f = lambda x, w, impl=impl: jb.conv(x, w, mode, strides=stride, impl=impl)
        fwd, fb = jax.jit(f), _fwd_bwd(f, x, w)
        fns[f"{impl}/fwd"] = lambda fwd=fwd: _block(fwd(x, w))
        fns[f"{impl}/fb"] = lambda fb=fb: _block(fb(x, w))
      times = time_interleaved(fns, repeats)
      path = jb.auto_conv_path((3, 3), (mode, mode))
      rows.append({"op": "conv_impl", "layer": name, "in_shape": list(shape), "c_out": cout, "stride": stride,
                   "mode": mode, "auto_path": path, **{k.replace("/", "_"): v for k, v in times.items()}})
  return rows


def impl_table(rows: list[dict[str, Any]]) -> str:
  out = []
  for r in rows:
    ms = {k: r[k]["median_ms"] for k in ("xla_fwd", "im2col_fwd", "auto_fwd", "xla_fb", "im2col_fb", "auto_fb")}
    out.append([r["layer"], r["mode"], fmt_ms(ms["xla_fwd"]), fmt_ms(ms["im2col_fwd"]),
                fmt_ratio(ms["im2col_fwd"], ms["xla_fwd"]), fmt_ms(ms["xla_fb"]), fmt_ms(ms["im2col_fb"]),
                fmt_ratio(ms["im2col_fb"], ms["xla_fb"]), r["auto_path"], fmt_ms(ms["auto_fwd"]),
                fmt_ms(ms["auto_fb"])])
  return markdown_table(["layer", "mode", "xla fwd ms", "im2col fwd ms", "im2col/xla fwd", "xla fwd+bwd ms",
                         "im2col fwd+bwd ms", "im2col/xla fwd+bwd", "auto path", "auto fwd ms", "auto fwd+bwd ms"], out)


def _legacy_blur_vjp(size: int, stride: int, pad_mode: str):
  """The former reverse-only rule: the same forward and hand-written adjoint passes as a ``custom_vjp``."""
  import functools
  from jaxborders.ops import filters
  taps = tuple(float(t) for t in jb.filter_taps("binomial", size))

  @jax.custom_vjp
  def blur(x):
    rank = x.ndim - 2
    return filters._blur_pool_forward(x, taps, (stride,) * rank, (filters.blur_padding(size, pad_mode),) * rank,
                                      (pad_mode,) * rank)

  def fwd(x):
    return blur(x), x.shape

  def bwd(shape, g):
    rank = len(shape) - 2
    adjoint = functools.partial(filters._blur_pool_adjoint, taps=taps, strides=(stride,) * rank,
                                pads=(filters.blur_padding(size, pad_mode),) * rank, pad_modes=(pad_mode,) * rank,
                                shape=shape)
    return (adjoint(g),)

  blur.defvjp(fwd, bwd)
  return blur


def bench_blur_vjp(shape, size: int, repeats: int, dtype) -> dict[str, Any]:
  x = jnp.asarray(np.random.default_rng(0).standard_normal(shape), dtype)
  new = lambda x: jb.blur_pool(x, size=size, stride=2, pad_mode="reflect")
  old = _legacy_blur_vjp(size, 2, "reflect")
  dx = jnp.asarray(np.random.default_rng(2).standard_normal(shape), dtype)
  jvp = jax.jit(lambda x, dx: jax.jvp(new, (x,), (dx,)))
  fb_new, fb_old = _fwd_bwd(new, x), _fwd_bwd(old, x)
  diff = float(jnp.abs(fb_new(x)[1][0] - fb_old(x)[1][0]).max())
  times = time_interleaved({"now/fb": lambda: _block(fb_new(x)), "custom_vjp/fb": lambda: _block(fb_old(x)),
                            "now/jvp": lambda: _block(jvp(x, dx))}, repeats)
  return {"op": "blur_pool_rule", "in_shape": list(shape), "size": size, "max_abs_grad_diff": diff,
          **{k.replace("/", "_"): v for k, v in times.items()}}


def conv_table(rows: list[dict[str, Any]]) -> str:
  base = rows[0]
  out = []
  for r in rows:
    out.append([r["variant"], "×".join(map(str, r["out_shape"][1:3])), fmt_ms(r["fwd"]["median_ms"]),
                fmt_ratio(r["fwd"]["median_ms"], base["fwd"]["median_ms"]), fmt_ms(r["fwd_bwd"]["median_ms"]),
                fmt_ratio(r["fwd_bwd"]["median_ms"], base["fwd_bwd"]["median_ms"]),
                fmt_ratio(r["flops"], base["flops"])])
  return markdown_table(["conv", "out H×W", "fwd ms", "fwd / lax SAME", "fwd+bwd ms", "fwd+bwd / lax SAME",
                         "FLOPs / lax SAME"], out)


def blur_table(rows: list[dict[str, Any]]) -> str:
  out = []
  for r in rows:
    jf, jb_ = r["jax_fwd"]["median_ms"], r["jax_fb"]["median_ms"]
    tf = r.get("torch_fwd", {}).get("median_ms")
    tb = r.get("torch_fb", {}).get("median_ms")
    out.append([str(r["size"]), fmt_ms(jf), fmt_ms(tf), fmt_ratio(jf, tf), fmt_ms(jb_), fmt_ms(tb), fmt_ratio(jb_, tb),
                "—" if r["max_abs_diff_vs_torch"] is None else f"{r['max_abs_diff_vs_torch']:.1e}"])
  return markdown_table(["blur size", "jax fwd ms", "torch fwd ms", "jax/torch fwd", "jax fwd+bwd ms",
                         "torch fwd+bwd ms", "jax/torch fwd+bwd", "max |jax - torch|"], out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--out", default="benchmarks/results/ops.json", help="JSON output path")
  p.add_argument("--quick", action="store_true", help="tiny shapes, few repeats (smoke run)")
  p.add_argument("--repeats", type=int, default=None, help="timed calls per variant (default 7; quick 2)")
  p.add_argument("--sizes", default="3,4,5", help="blur filter sizes")
  p.add_argument("--blur-shape", default="32,56,56,256", help="NHWC blur_pool input")
  p.add_argument("--conv-shape", default="8,56,56,64", help="NHWC conv input (kernel 3x3, C_out = C_in)")
  p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  p.add_argument("--no-torch", action="store_true", help="skip the PyTorch columns")
  p.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: all cores)")
  p.add_argument("--skip-conv", action="store_true")
  p.add_argument("--skip-blur", action="store_true")
  p.add_argument("--skip-impl", action="store_true", help="skip the per-impl conv table")
  p.add_argument("--impl-batch", type=int, default=None, help="override the batch of the per-impl layer shapes")
  p.add_argument("--blur-vjp-compare", default=None, metavar="N,H,W,C",
                 help="time blur_pool fwd+bwd, custom JVP vs the former custom VJP, on this NHWC input")
  args = p.parse_args(argv)

  blur_shape = (4, 16, 16, 32) if args.quick else tuple(int(v) for v in args.blur_shape.split(","))
  conv_shape = (2, 16, 16, 16) if args.quick else tuple(int(v) for v in args.conv_shape.split(","))
  repeats = args.repeats or (2 if args.quick else 7)
  dtype = jnp.dtype(args.dtype)
  use_torch = not args.no_torch
  if use_torch:
    try:
      import torch
      from benchmarks.common import cpu_cores
      torch.set_num_threads(args.torch_threads or cpu_cores())
    except ImportError:
      use_torch = False
  env = environment()
  print(f"# jaxborders ops benchmark\n\n{env_line(env)}\n", flush=True)
  result: dict[str, Any] = {"env": env, "args": vars(args), "repeats": repeats}
  if not args.skip_conv:
    rows = bench_conv(conv_shape, conv_shape[-1], 3, repeats, dtype)
    result["conv"] = rows
    print(f"## conv, input {'×'.join(map(str, conv_shape))} (NHWC), kernel 3×3×{conv_shape[-1]}×{conv_shape[-1]}, "
          f"{args.dtype}, median of {repeats}\n\n{conv_table(rows)}\n", flush=True)
  if not args.skip_blur:
    rows = bench_blur(blur_shape, [int(s) for s in args.sizes.split(",")], repeats, use_torch, dtype)
    result["blur_pool"] = rows
    print(f"## blur_pool (binomial, reflect, stride 2), input {'×'.join(map(str, blur_shape))} (NHWC; torch NCHW), "
          f"{args.dtype}, median of {repeats}\n\n{blur_table(rows)}\n", flush=True)
  if not args.skip_impl:
    shapes = [(n, ((2, 16, 16, 16) if args.quick else s), 16 if args.quick else c, st) for n, s, c, st in IMPL_SHAPES]
    if args.impl_batch:
      shapes = [(n, (args.impl_batch, *s[1:]), c, st) for n, s, c, st in shapes]
    rows = bench_impls(shapes, IMPL_MODES, repeats, dtype)
    result["conv_impl"] = rows
    print(f"## conv per impl (3×3 kernels, {args.dtype}, median of {repeats}; backend {jax.default_backend()})\n\n"
          f"{impl_table(rows)}\n", flush=True)
  if args.blur_vjp_compare:
    shape = tuple(int(v) for v in args.blur_vjp_compare.split(","))
    row = bench_blur_vjp(shape, 3, repeats, dtype)
    result["blur_pool_rule"] = row
    new, old = row["now_fb"]["median_ms"], row["custom_vjp_fb"]["median_ms"]
    print(f"## blur_pool derivative rule, input {'×'.join(map(str, shape))}, size 3, reflect, stride 2\n\n"
          + markdown_table(["fwd+bwd now (linear primitives) ms", "fwd+bwd custom_vjp (before) ms", "now / before",
                            "jvp ms", "max |grad diff|"],
                           [[fmt_ms(new), fmt_ms(old), fmt_ratio(new, old), fmt_ms(row["now_jvp"]["median_ms"]),
                             f"{row['max_abs_grad_diff']:.1e}"]]) + "\n", flush=True)
  path = write_json(args.out, result)
  print(f"wrote {path}")
  return result


if __name__ == "__main__":
  main()
