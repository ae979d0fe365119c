"""One prepared accelerator check: test subset, ResNet-50 training vs PyTorch, BlurPool / APS alone, and
``rn50_full`` end to end through the real TFDS / grain input pipeline. Writes ``device_check.json`` and
``device_check.md`` into ``--out``.

    bash benchmarks/device_check.sh OUT_DIR              # on the GPU machine (installs .whl/ first, see below)
    python -m benchmarks.device_check --dry-run --out /tmp/dc   # tiny CPU mode (tests/test_device_check.py)

Sections, each with its own time budget (seconds, ``--budget section=s``); a section that fails or runs out of
time records its error and the next one still runs. Defaults fit one GPU in 7 minutes:

=============  ====  ==============================================================================================
``env``           10  device, versions (jax, jaxlib, flax, optax, torch, torchvision, grain, tfds, CUDA/cuDNN)
``tests``         45  ``pytest -m device`` (the implementation comparisons), the bfloat16 layer / model tests and
                      the sharded train step (``-k``), each with pass / fail / error / skip counts (junit XML)
``equivalence``   15  the PyTorch ResNet-50s below load this project's weights (``jaxborders.convert``) and give
                      the same logits (float32, CPU, width 16, Bottleneck blocks (2, 1, 1, 1): every block kind):
                      they are the same networks
``resnet50``     190  one training step (SGD momentum, weight decay, BatchNorm statistics) at 224, batch 128, in
                      bfloat16 compute with float32 parameters and in float32: ``same``, ``full``,
                      ``same+blur`` / ``full+blur`` (``blur:binomial:3``), ``aps``; images/s, peak device
                      memory, XLA's FLOP count; beside PyTorch (AMP bf16, channels-last, eager and
                      ``torch.compile``); then the largest power-of-two batch that fits (``same``, bf16)
``ops``           20  BlurPool (binomial 3, stride 2) and APS alone, forward and forward+backward, 128x56x56x256,
                      against a PyTorch depthwise BlurPool
``train``        140  synthetic ImageNet-shaped JPEG records written as a real TFDS ``imagenet2012`` data set
                      (array_record, no TensorFlow), the input pipeline alone at several worker counts, then
                      ``python -m train.main --config configs/rn50_full.py`` for 200 steps on it
=============  ====  ==============================================================================================

Every measurement runs in a child process (``--worker``): a crash, an out-of-memory error or a hang costs that
entry only, and each JAX / PyTorch entry reads its own peak memory (``jax.devices()[0].memory_stats()``
``peak_bytes_in_use``; ``torch.cuda.max_memory_allocated``). Entries run in priority order (the headline
``same`` bf16 pair first) and are skipped, with the reason recorded, once their section's budget is spent.

The PyTorch networks are written here (torchvision is used for ``same`` when installed, and the equivalence
section checks ours against it there): ``same`` = torchvision ResNet-50 v1.5; ``full`` = the F-Conv authors'
recipe (Kayhan & van Gemert, CVPR 2020; github.com/oskyhn/CNNs-Without-Borders): 3x3 convs pad 2, stem 7x7 s2
p6, max pool k2 s2, shortcuts zero-padded by 1 before the (strided) 1x1; ``+blur`` = the antialiased-cnns
``pool_only`` placement (Zhang, ICML 2019; github.com/adobe/antialiased-cnns): stem max pool k2 s1 then BlurPool
s2, strided 3x3 -> stride 1 followed by BlurPool, shortcut BlurPool before a stride-1 1x1; reflect padding for
``same``, zero ``f-1`` per side for ``full`` (CWB's ``models_fconv_lpf``). Module names follow torchvision /
antialiased-cnns so that ``jaxborders.convert.to_torch_state_dict`` loads into them. APS has no PyTorch
counterpart here.

Timing: device-resident random batches (the input pipeline is timed separately in ``train``), warm-up steps
excluded, then ``steps`` steps timed as a whole (JAX dispatches asynchronously; one sync at the end; PyTorch
synchronises once at the end too). float32 means each framework's default GPU float32 math (XLA and cuDNN may
use TF32 for convolutions; PyTorch's ``allow_tf32`` flags are set to match and recorded).

Offline GPU machine (its image has JAX, Flax, Optax, Orbax, PyTorch, torchvision, absl, etils, protobuf,
pyarrow, PyYAML, Pillow, OpenCV; not ml-collections, grain, TFDS or tensorboardX). Bring these wheels
(CPython 3.12, x86-64), downloaded here by ``bash benchmarks/device_wheels.sh`` into ``.whl/`` (git-ignored):
grain 0.2.18, array-record 0.8.6, tensorflow-datasets 4.9.10, ml-collections 1.1.0, tensorboardX 2.6.5,
dm-tree 0.1.10, tensorflow-metadata 1.21.0, googleapis-common-protos 1.76.0, simple-parsing 0.1.9,
docstring-parser 0.18.0, immutabledict 4.3.1, promise 2.3, termcolor 3.3.0, toml 0.10.2, portpicker 1.6.0
(about 10 MB). ``benchmarks/device_check.sh`` installs them there without a network:
``python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl`` and
``PYTHONPATH=/tmp/site``. With the device tool: ``carry=[".whl"]``, command
``bash benchmarks/device_check.sh $OUT``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository root importable
  sys.path.insert(0, str(ROOT))

SECTIONS: tuple[str, ...] = ("env", "tests", "equivalence", "resnet50", "ops", "train")
BUDGET_S: dict[str, float] = {"env": 10, "tests": 45, "equivalence": 15, "resnet50": 190, "ops": 20, "train": 140}
VARIANTS: dict[str, dict[str, Any]] = {
    "same": dict(conv_mode="same", antialias=None),
    "full": dict(conv_mode="full", antialias=None),
    "same+blur": dict(conv_mode="same", antialias="blur:binomial:3"),
    "full+blur": dict(conv_mode="full", antialias="blur:binomial:3"),
    "aps": dict(conv_mode="circular", antialias="aps"),
}
TORCH_VARIANTS: tuple[str, ...] = ("same", "full", "same+blur", "full+blur")
DTYPES: tuple[str, ...] = ("bfloat16", "float32")


@dataclasses.dataclass(frozen=True)
class Plan:
  """Sizes of one run: ``FULL`` on a GPU, ``DRY`` on a CPU (every code path, tiny shapes)."""

  image_size: int = 224
  batch: int = 128
  width: int = 64
  stages: tuple[int, ...] = (3, 4, 6, 3)  # Bottleneck blocks per stage: ResNet-50
  num_classes: int = 1000
  warmup: int = 3
  steps: int = 10
  max_batches: tuple[int, ...] = (256, 512, 1024)
  jax_variants: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=lambda: {
      "bfloat16": tuple(VARIANTS), "float32": tuple(VARIANTS)})
  torch_variants: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=lambda: {
      "bfloat16": TORCH_VARIANTS, "float32": TORCH_VARIANTS})
  torch_compile: tuple[str, ...] = ("same",)  # variants (bf16) also timed under torch.compile (~1 min each)
  compile_backend: str = "inductor"
  one_entry_per_process: bool = True  # clean per-entry peak memory; the dry run groups entries (start-up cost)
  ops_shape: tuple[int, int, int, int] = (128, 56, 56, 256)
  ops_repeats: int = 50
  pytest_runs: tuple[tuple[str, ...], ...] = (
      ("-m", "device", "tests"),
      ("tests/test_filters.py", "tests/test_layers.py", "tests/test_resnet.py", "tests/test_device_check.py",
       "-k", "bfloat16 or sharded"),
  )
  train_records: int = 6400  # 25 steps of 256 per epoch: the trainer restarts the pipeline at each epoch
  record_shards: int = 16  # written in parallel, one process per shard
  val_records: int = 256
  record_size: tuple[int, int] = (375, 500)  # (H, W) of the synthetic photos: a typical ImageNet shape
  train_batch: int = 256
  train_steps: int = 200
  train_model: str = "resnet50"
  train_width: int = 64
  train_image_size: int = 224
  train_dtype: str = "bfloat16"
  pipeline_workers: tuple[int, ...] = (8, 16)
  pipeline_batches: int = 12
  eqv_size: int = 64
  eqv_width: int = 16
  eqv_stages: tuple[int, ...] = (2, 1, 1, 1)  # every block kind: identity and projection, strided or not


FULL = Plan()
# The dry run compiles on a 2-core CPU: one Bottleneck per stage, width 8; every PyTorch variant (eager is cheap),
# three JAX entries (same and aps in bfloat16, full+blur in float32: every option and both dtypes through the same
# function); the batch "search" repeats the first entry's shapes (a persistent compilation-cache hit); ResNet-18
# in the trainer run.
DRY = Plan(image_size=32, batch=2, width=8, stages=(1, 1, 1, 1), num_classes=10, warmup=1, steps=2,
           max_batches=(2,), jax_variants={"bfloat16": ("same", "aps"), "float32": ("full+blur",)},
           torch_variants={"bfloat16": TORCH_VARIANTS, "float32": ("same",)}, train_model="resnet18",
           torch_compile=("same",), compile_backend="eager", one_entry_per_process=False, ops_shape=(2, 8, 8, 16),
           ops_repeats=2, pytest_runs=(("tests/test_filters.py", "-k", "bfloat16"),), train_records=8,
           record_shards=2, val_records=4, record_size=(40, 48), train_batch=4, train_steps=2, train_width=8,
           train_image_size=32, train_dtype="float32", pipeline_workers=(1,), pipeline_batches=2, eqv_size=64, eqv_width=8)


# ---------------------------------------------------------------------------------------------------------------
# PyTorch ResNet-50s: torchvision v1.5 (same), F-Conv (full), antialiased-cnns BlurPool placement (+blur).


def binomial_taps(size: int) -> list[float]:
  """Pascal's triangle row ``size - 1``, normalised (antialiased-cnns' ``filt_size`` filters)."""
  row = [math.comb(size - 1, k) for k in range(size)]
  return [v / sum(row) for v in row]


def torch_modules():
  """The PyTorch module classes (imported lazily: torch is optional for the rest of the project)."""
  import torch
  import torch.nn.functional as F
  from torch import nn

  class BlurPool(nn.Module):
    """Depthwise binomial blur then subsampling; ``full``: zero ``f-1`` per side, else reflect
    ``((f-1)//2, f//2)`` (antialiased-cnns ``BlurPool``, NCHW)."""

    def __init__(self, channels: int, size: int, stride: int, full: bool):
      super().__init__()
      taps = torch.tensor(binomial_taps(size))
      self.register_buffer("filt", (taps[:, None] * taps[None, :])[None, None].repeat(channels, 1, 1, 1))
      self.stride, self.full = stride, full
      self.pads = (size - 1,) * 4 if full else ((size - 1) // 2, size // 2) * 2

    def forward(self, x):
      x = F.pad(x, self.pads) if self.full else F.pad(x, self.pads, mode="reflect")
      return F.conv2d(x, self.filt.to(x.dtype), stride=self.stride, groups=x.shape[1])

  class Bottleneck(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int, full: bool, blur: int):
      super().__init__()
      pad, out = (2 if full else 1), planes * 4
      aa = blur > 1 and stride > 1
      self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(planes)
      self.conv2 = nn.Conv2d(planes, planes, 3, 1 if aa else stride, pad, bias=False)
      self.bn2 = nn.BatchNorm2d(planes)
      conv3 = nn.Conv2d(planes, out, 1, bias=False)
      self.conv3 = nn.Sequential(BlurPool(planes, blur, stride, full), conv3) if aa else conv3
      self.bn3 = nn.BatchNorm2d(out)
      self.sc_pad = 1 if full else 0  # CWB pads both shortcut kinds of a Bottleneck by 1
      self.downsample = None
      if stride != 1 or cin != out:
        layers = [BlurPool(cin, blur, stride, full), nn.Conv2d(cin, out, 1, bias=False)] if aa else [
            nn.Conv2d(cin, out, 1, stride, bias=False)]
        self.downsample = nn.Sequential(*layers, nn.BatchNorm2d(out))

    def forward(self, x):
      y = F.relu(self.bn1(self.conv1(x)))
      y = F.relu(self.bn2(self.conv2(y)))
      y = self.bn3(self.conv3(y))
      sc = F.pad(x, (self.sc_pad,) * 4) if self.sc_pad else x
      return F.relu(y + (self.downsample(sc) if self.downsample is not None else sc))

  class ResNet50(nn.Module):
    def __init__(self, full: bool, blur: int, num_classes: int, width: int = 64, stages=(3, 4, 6, 3)):
      super().__init__()
      self.conv1 = nn.Conv2d(3, width, 7, 2, 6 if full else 3, bias=False)
      self.bn1 = nn.BatchNorm2d(width)
      if blur > 1:
        self.maxpool = nn.Sequential(nn.MaxPool2d(2, 1), BlurPool(width, blur, 2, full))
      else:
        self.maxpool = nn.MaxPool2d(2, 2) if full else nn.MaxPool2d(3, 2, 1)
      cin = width
      for i, n in enumerate(stages):
        planes = width * 2 ** i
        blocks = []
        for b in range(n):
          blocks.append(Bottleneck(cin, planes, 2 if (b == 0 and i > 0) else 1, full, blur))
          cin = planes * 4
        setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
      self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
      x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
      x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
      return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

  return BlurPool, ResNet50


def torch_resnet50(variant: str, num_classes: int, width: int = 64, prefer_torchvision: bool = True,
                   stages: tuple[int, ...] = (3, 4, 6, 3)):
  """PyTorch ResNet-50 of ``variant`` (one of ``TORCH_VARIANTS``); ``same`` is torchvision's when installed.
  ``width`` / ``stages``: channels of stage 1 and Bottleneck blocks per stage (tiny networks for the dry run)."""
  if variant not in TORCH_VARIANTS:
    raise ValueError(f"variant={variant!r}; accepted values: {', '.join(TORCH_VARIANTS)}.")
  if variant == "same" and width == 64 and tuple(stages) == (3, 4, 6, 3) and prefer_torchvision:
    try:
      import torchvision
      return torchvision.models.resnet50(num_classes=num_classes)
    except ImportError:
      pass
  _, resnet = torch_modules()
  return resnet(full=variant.startswith("full"), blur=3 if variant.endswith("+blur") else 1,
                num_classes=num_classes, width=width, stages=tuple(stages))


def jax_resnet50(plan: "Plan", variant: str, num_classes: int, width: int, dtype: Any = None) -> Any:
  """This project's ResNet-50 of ``variant`` (``plan.stages`` Bottleneck blocks per stage)."""
  import jax.numpy as jnp

  from jaxborders.models import get_model, resnet
  kwargs = dict(num_classes=num_classes, width=width, dtype=dtype or jnp.float32, **VARIANTS[variant])
  if tuple(plan.stages) == (3, 4, 6, 3):
    return get_model("resnet50", **kwargs)
  return resnet.ResNet(block="bottleneck", stage_sizes=tuple(plan.stages), **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Workers (child processes). Each writes one JSON line per entry to its results file as soon as it is done.


def _emit(path: str, record: dict[str, Any]) -> None:
  with open(path, "a") as f:
    f.write(json.dumps(record, default=str) + "\n")


def _jax_peak_bytes() -> int | None:
  import jax
  stats = jax.devices()[0].memory_stats() or {}
  return stats.get("peak_bytes_in_use")


def _xla_cost(compiled: Any) -> dict[str, float | None]:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost
  flops = float(cost["flops"]) if cost and "flops" in cost else None
  try:
    m = compiled.memory_analysis()
    plan = float(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
                 - getattr(m, "alias_size_in_bytes", 0))
  except (AttributeError, NotImplementedError, TypeError):
    plan = None
  return {"flops": flops, "xla_memory_plan_bytes": plan}


def random_variables(model: Any, shape: tuple[int, ...], seed: int = 0) -> Any:
  """Variables drawn in NumPy from the model's variable shapes (no compiled init program: XLA:CPU takes minutes
  to compile ResNet-50's). Conv kernels He-normal over their fan-in, the classifier's 1 / fan-in, BatchNorm scale 1 + U(-0.1, 0.1)
  and bias U(-0.1, 0.1) (so that a scale / bias mix-up shows), statistics mean 0, variance 1."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False),
                          jax.ShapeDtypeStruct((1, *shape[1:]), jnp.float32))

  def draw(path, leaf):
    name = str(path[-1].key) if hasattr(path[-1], "key") else str(path[-1])
    if name == "kernel":  # He for convs; 1 / fan-in for the classifier (moderate first logits)
      gain = 2.0 if len(leaf.shape) > 2 else 1.0
      return rng.standard_normal(leaf.shape, np.float32) * np.sqrt(gain / np.prod(leaf.shape[:-1]))
    if name == "scale":
      return 1 + rng.uniform(-0.1, 0.1, leaf.shape).astype(np.float32)
    if name == "bias":
      return rng.uniform(-0.1, 0.1, leaf.shape).astype(np.float32)
    return (np.ones if name == "var" else np.zeros)(leaf.shape, np.float32)

  return jax.tree.map(jnp.asarray, jax.tree_util.tree_map_with_path(draw, shapes))


def jax_train_entry(plan: Plan, variant: str, dtype: str, batch: int) -> dict[str, Any]:
  """Images/s, peak memory and FLOPs of the project's ``train.trainer.train_step`` on one ResNet-50 variant."""
  import functools

  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax

  from train import trainer

  model = jax_resnet50(plan, variant, plan.num_classes, plan.width,
                       jnp.bfloat16 if dtype == "bfloat16" else jnp.float32)
  # rn50 recipe: SGD lr 0.1, momentum 0.9, PyTorch-style (coupled) weight decay 1e-4.
  tx = optax.chain(optax.add_decayed_weights(1e-4), optax.sgd(0.1, momentum=0.9))
  shape = (batch, plan.image_size, plan.image_size, 3)

  variables = random_variables(model, shape)
  state = trainer.TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                             batch_stats=variables["batch_stats"], opt_state=tx.init(variables["params"]),
                             lr_scale=jnp.ones((), jnp.float32), rng=jax.random.PRNGKey(1))
  rng = np.random.default_rng(0)
  data = {"image": jnp.asarray(rng.standard_normal(shape, np.float32)),
          "label": jnp.asarray(rng.integers(0, plan.num_classes, batch, dtype=np.int32))}
  step = jax.jit(functools.partial(trainer.train_step, model=model, tx=tx), donate_argnums=(0,))
  t0 = time.perf_counter()
  compiled = step.lower(state, data).compile()
  compile_s = time.perf_counter() - t0
  for _ in range(plan.warmup):
    state, metrics = compiled(state, data)
  jax.block_until_ready(metrics)
  t0 = time.perf_counter()
  for _ in range(plan.steps):
    state, metrics = compiled(state, data)
  loss = float(metrics["loss"])  # waits for the last step
  dt = time.perf_counter() - t0
  return {"images_per_s": plan.steps * batch / dt, "step_ms": 1e3 * dt / plan.steps, "compile_s": compile_s,
          "peak_bytes": _jax_peak_bytes(), "loss": loss, **_xla_cost(compiled)}


def torch_train_entry(plan: Plan, variant: str, dtype: str, batch: int, use_compile: bool) -> dict[str, Any]:
  """Images/s and peak memory of a PyTorch training step (AMP bf16 / float32, channels-last on a GPU)."""
  import torch
  import torch.nn.functional as F

  cuda = torch.cuda.is_available()
  device = "cuda" if cuda else "cpu"
  torch.backends.cudnn.benchmark = True
  torch.backends.cuda.matmul.allow_tf32 = True  # XLA's default float32 GPU math may use TF32 too
  torch.backends.cudnn.allow_tf32 = True
  torch.manual_seed(0)
  model = torch_resnet50(variant, plan.num_classes, plan.width, stages=plan.stages).to(device)
  x = torch.randn(batch, 3, plan.image_size, plan.image_size, device=device)
  y = torch.randint(0, plan.num_classes, (batch,), device=device)
  if cuda:
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
  opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
  amp = dtype == "bfloat16"
  model.train()
  # torch.compile errors surface at the first call (warm-up): the entry then records the error and the table
  # falls back to the eager entry of the same variant.
  fwd = torch.compile(model, backend=plan.compile_backend) if use_compile else model

  def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=amp):
      loss = F.cross_entropy(fwd(x).float(), y)
    loss.backward()
    opt.step()
    return loss

  sync = torch.cuda.synchronize if cuda else (lambda: None)
  if cuda:
    torch.cuda.reset_peak_memory_stats()
  t0 = time.perf_counter()
  for _ in range(plan.warmup):
    step()
  sync()
  warmup_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  for _ in range(plan.steps):
    loss = step()
  sync()
  dt = time.perf_counter() - t0
  loss = float(loss)
  return {"images_per_s": plan.steps * batch / dt, "step_ms": 1e3 * dt / plan.steps, "warmup_s": warmup_s,
          "peak_bytes": torch.cuda.max_memory_allocated() if cuda else None, "loss": loss,
          "compiled": use_compile, "compile_backend": plan.compile_backend if use_compile else None,
          "torchvision": type(model).__module__.startswith("torchvision"),
          "channels_last": cuda, "allow_tf32": True}


def equivalence_entry(plan: Plan, variant: str) -> dict[str, Any]:
  """Our PyTorch network loads the JAX model's weights and gives the same logits (float32, training mode:
  BatchNorm normalises with the batch's statistics in both, so every layer's output is well scaled)."""
  import jax
  import numpy as np
  import torch

  from jaxborders import convert

  plan = dataclasses.replace(plan, stages=plan.eqv_stages)
  model = jax_resnet50(plan, variant, 10, plan.eqv_width)
  x = np.random.default_rng(0).standard_normal((4, plan.eqv_size, plan.eqv_size, 3)).astype(np.float32)
  variables = random_variables(model, x.shape)
  ours = np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"])[0])(variables, x))
  net = torch_resnet50(variant, 10, plan.eqv_width, prefer_torchvision=False, stages=plan.stages)
  state = convert.to_torch_state_dict(model, variables)
  # BlurPool ``filt`` buffers are fixed (ours are built from the taps); convert writes them for width 64 only.
  keys = net.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()
                              if not k.endswith(".filt")}, strict=False)
  if keys.unexpected_keys or any(not k.endswith(".filt") for k in keys.missing_keys):
    raise KeyError(f"state_dict mismatch: missing {keys.missing_keys}, unexpected {keys.unexpected_keys}")
  net.train()
  with torch.no_grad():
    theirs = net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
  out = {"max_abs_diff": float(np.abs(ours - theirs).max()), "max_abs_logit": float(np.abs(ours).max())}
  if variant == "same":
    try:  # our 'same' has torchvision's names and shapes exactly, where torchvision is installed
      import torchvision
      shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}
      out["same_as_torchvision"] = shapes(torchvision.models.resnet50(num_classes=10)) == shapes(
          torch_resnet50("same", 10, 64, prefer_torchvision=False))
    except ImportError:
      out["same_as_torchvision"] = "torchvision not installed"
  return out


def ops_entries(plan: Plan, framework: str, results: str) -> None:
  """BlurPool / APS alone (JAX) or the depthwise BlurPool (PyTorch): forward and forward+backward."""
  n, h, w, c = plan.ops_shape
  for dtype in DTYPES:
    if framework == "jax":
      fns = _jax_ops(plan, dtype)
    else:
      fns = _torch_ops(plan, dtype)
    for name, (fn, flops) in fns.items():
      record = {"framework": framework, "op": name, "dtype": dtype, "shape": [n, h, w, c]}
      try:
        record.update(_time_fn(fn, plan.ops_repeats), flops=flops)
      except Exception as e:  # noqa: BLE001  (one op failing must not hide the others)
        record["error"] = f"{type(e).__name__}: {e}"
      _emit(results, record)


def _time_fn(fn: Any, repeats: int) -> dict[str, float]:
  fn()
  fn()
  t0 = time.perf_counter()
  for _ in range(repeats):
    out = fn()
  out()  # the last call's sync
  return {"ms": 1e3 * (time.perf_counter() - t0) / repeats}


def _jax_ops(plan: Plan, dtype: str) -> dict[str, Any]:
  import jax
  import jax.numpy as jnp
  import numpy as np

  import jaxborders as jb

  dt = jnp.bfloat16 if dtype == "bfloat16" else jnp.float32
  x = jnp.asarray(np.random.default_rng(0).standard_normal(plan.ops_shape, np.float32), dt)
  ops = {"blurpool": lambda x: jb.blur_pool(x, size=3, stride=2, kind="binomial", pad_mode="reflect"),
         "aps": lambda x: jb.aps_pool(x)[0]}
  fns = {}
  for name, op in ops.items():
    g = jnp.asarray(np.random.default_rng(1).standard_normal(jax.eval_shape(op, x).shape, np.float32), dt)
    fwd = jax.jit(op).lower(x).compile()
    fb = jax.jit(jax.grad(lambda x, g: jnp.vdot(op(x).astype(jnp.float32), g.astype(jnp.float32)))).lower(
        x, g).compile()
    fns[f"{name} fwd"] = (lambda f=fwd: _jax_sync(f(x)), _xla_cost(fwd)["flops"])
    fns[f"{name} fwd+bwd"] = (lambda f=fb: _jax_sync(f(x, g)), _xla_cost(fb)["flops"])
  return fns


def _jax_sync(out: Any) -> Any:
  import jax
  return lambda: jax.block_until_ready(out)


def _torch_ops(plan: Plan, dtype: str) -> dict[str, Any]:
  import torch

  blur_cls, _ = torch_modules()
  cuda = torch.cuda.is_available()
  device = "cuda" if cuda else "cpu"
  n, h, w, c = plan.ops_shape
  tdt = torch.bfloat16 if dtype == "bfloat16" else torch.float32
  x = torch.randn(n, c, h, w, device=device, dtype=tdt)
  if cuda:
    x = x.contiguous(memory_format=torch.channels_last)
  pool = blur_cls(c, 3, 2, full=False).to(device)
  xg = x.detach().clone().requires_grad_(True)
  g = torch.randn_like(pool(x))
  sync = torch.cuda.synchronize if cuda else (lambda: None)

  def fwd():
    with torch.no_grad():
      pool(x)
    return sync

  def fb():
    xg.grad = None
    pool(xg).backward(g)
    return sync

  return {"blurpool fwd": (fwd, None), "blurpool fwd+bwd": (fb, None)}


def pipeline_entry(plan: Plan, data_dir: str, workers: int) -> dict[str, Any]:
  """Images/s of the training input pipeline alone (JPEG decode, Inception crop, flip, normalise, batch)."""
  from jaxborders.data import tfds_source
  pipe = tfds_source.make_pipeline("imagenet2012", "train", batch_size=plan.train_batch, seed=0,
                                   image_size=plan.train_image_size, data_dir=data_dir, shard_index=0, shard_count=1,
                                   worker_count=workers, log_every=0)
  try:
    t_start = time.perf_counter()
    next(pipe)  # worker start-up and first batch
    first_s = time.perf_counter() - t_start
    t0 = time.perf_counter()
    for _ in range(plan.pipeline_batches):
      next(pipe)
    dt = time.perf_counter() - t0
  finally:
    pipe.close()
  return {"workers": workers, "images_per_s": plan.pipeline_batches * plan.train_batch / dt,
          "first_batch_s": first_s}


def plan_from_dict(d: dict[str, Any]) -> Plan:
  """Inverse of ``dataclasses.asdict`` through JSON (lists back to tuples)."""
  def tup(v):
    if isinstance(v, list):
      return tuple(tup(x) for x in v)
    return {k: tup(x) for k, x in v.items()} if isinstance(v, dict) else v
  return Plan(**{k: tup(v) for k, v in d.items()})


def run_worker(kind: str, args: dict[str, Any], results: str) -> None:
  """Child-process entry point: run each requested entry, one JSON line each (errors recorded, not raised)."""
  plan = plan_from_dict(args["plan"])
  if kind == "ops":
    ops_entries(plan, args["framework"], results)
    return
  for entry in args["entries"]:
    record = dict(entry)
    t0 = time.perf_counter()
    try:
      if kind == "jax":
        record.update(jax_train_entry(plan, entry["variant"], entry["dtype"], entry["batch"]))
      elif kind == "torch":
        record.update(torch_train_entry(plan, entry["variant"], entry["dtype"], entry["batch"], entry["compile"]))
      elif kind == "equivalence":
        record.update(equivalence_entry(plan, entry["variant"]))
      elif kind == "pipeline":
        record.update(pipeline_entry(plan, args["data_dir"], entry["workers"]))
      else:
        raise ValueError(f"worker kind={kind!r}; accepted values: jax, torch, equivalence, pipeline, ops.")
    except Exception as e:  # noqa: BLE001  (recorded; the orchestrator reports it)
      record["error"] = f"{type(e).__name__}: {e}"
      record["traceback"] = traceback.format_exc(limit=6)
    record["wall_s"] = time.perf_counter() - t0
    _emit(results, record)


# ---------------------------------------------------------------------------------------------------------------
# Orchestration.


class Budget:
  """Seconds left in one section."""

  def __init__(self, seconds: float):
    self.deadline = time.perf_counter() + seconds

  def left(self) -> float:
    return self.deadline - time.perf_counter()


def child_env(platform: str | None = None) -> dict[str, str]:
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
             PYTHONUNBUFFERED="1")
  if platform:
    env["JAX_PLATFORMS"] = platform
  return env


def spawn_worker(kind: str, args: dict[str, Any], timeout: float, work: Path, env: dict[str, str]
                 ) -> tuple[list[dict[str, Any]], str | None]:
  """Runs ``--worker kind`` with ``args``; returns its records and an error (timeout, crash) or None."""
  work.mkdir(parents=True, exist_ok=True)
  fd, results = tempfile.mkstemp(suffix=".jsonl", dir=work)
  os.close(fd)
  fd, argfile = tempfile.mkstemp(suffix=".json", dir=work)
  with os.fdopen(fd, "w") as f:
    json.dump(args, f)
  cmd = [sys.executable, "-m", "benchmarks.device_check", "--worker", kind, "--worker-args", argfile,
         "--worker-results", results]
  error = None
  if timeout < 1:
    return [], "skipped: section budget spent"
  try:
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
      error = f"worker exit code {proc.returncode}: {proc.stderr[-1500:]}"
  except subprocess.TimeoutExpired:
    error = f"timeout after {timeout:.0f} s (section budget)"
  with open(results) as f:
    records = [json.loads(line) for line in f if line.strip()]
  return records, error


def _entries_in_groups(plan: Plan, entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
  return [[e] for e in entries] if plan.one_entry_per_process else ([entries] if entries else [])


def run_entries(kind: str, plan: Plan, entries: list[dict[str, Any]], budget: Budget, work: Path,
                env: dict[str, str], extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
  """Each group of entries in a child process, in order, while the section's budget lasts; an entry without a
  result gets the group's error (timeout, crash, skipped)."""
  out = []
  for group in _entries_in_groups(plan, entries):
    args = {"plan": dataclasses.asdict(plan), "entries": group, **(extra or {})}
    records, error = spawn_worker(kind, args, budget.left(), work, env)
    done = {json.dumps({k: r[k] for k in group[0]}, sort_keys=True) for r in records}
    out += records
    out += [dict(e, error=error or "no result") for e in group
            if json.dumps(e, sort_keys=True) not in done]
  return out


def section_env(plan: Plan, budget: Budget, work: Path, dry_run: bool, backend: str) -> dict[str, Any]:
  import platform as platform_lib

  env: dict[str, Any] = {"python": platform_lib.python_version(), "machine": platform_lib.machine(),
                         "cpu_cores": len(os.sched_getaffinity(0)), "dry_run": dry_run,
                         "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
  # The devices as the children see them (this process keeps JAX on the CPU).
  probe = ("import jax, json; print(json.dumps([jax.default_backend(), "
           "[f'{d.platform}:{d.device_kind}' for d in jax.devices()]]))")
  proc = subprocess.run([sys.executable, "-c", probe], env=child_env(backend), capture_output=True, text=True,
                        timeout=max(1.0, budget.left()))
  if proc.returncode == 0:
    env["jax_backend"], env["devices"] = json.loads(proc.stdout.strip().splitlines()[-1])
  else:
    env["devices_error"] = proc.stderr[-800:]
  for mod in ("jax", "jaxlib", "flax", "optax", "orbax.checkpoint", "numpy", "torch", "torchvision", "grain",
              "tensorflow_datasets", "ml_collections", "tensorboardX", "array_record", "PIL", "cv2"):
    try:
      m = __import__(mod, fromlist=["_"])
      env[mod] = getattr(m, "__version__", "installed")
    except Exception as e:  # noqa: BLE001
      env[mod] = f"missing ({type(e).__name__})"
  try:
    import torch
    env["torch_cuda"] = torch.version.cuda
    env["torch_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    env["cudnn"] = torch.backends.cudnn.version() if torch.cuda.is_available() else None
  except ImportError:
    pass
  try:
    env["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.sm",
                                        "--format=csv,noheader"], capture_output=True, text=True,
                                       timeout=max(1.0, budget.left())).stdout.strip()
  except (OSError, subprocess.TimeoutExpired):
    env["nvidia_smi"] = None
  return env


def _junit_counts(path: Path) -> dict[str, int]:
  root = ET.parse(path).getroot()
  suites = [root] if root.tag == "testsuite" else list(root)
  counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
  for s in suites:
    for k in counts:
      counts[k] += int(s.get(k, 0))
  counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
  failed = [f"{c.get('classname')}::{c.get('name')}" for s in suites for c in s.iter("testcase")
            if c.find("failure") is not None or c.find("error") is not None]
  return {**counts, "failed_tests": failed[:30]}


def section_tests(plan: Plan, budget: Budget, work: Path, backend: str) -> list[dict[str, Any]]:
  out = []
  for i, args in enumerate(plan.pytest_runs):
    xml = work / f"pytest_{i}.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--continue-on-collection-errors",
           f"--junitxml={xml}", *args]
    record: dict[str, Any] = {"args": " ".join(args)}
    if budget.left() < 1:
      out.append(dict(record, error="skipped: section budget spent"))
      continue
    t0 = time.perf_counter()
    try:
      # tests/conftest.py defaults JAX_PLATFORMS to cpu: name this machine's backend so the tests run on it.
      env = dict(child_env(backend), XLA_PYTHON_CLIENT_PREALLOCATE="false")  # tests may start more processes
      proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=budget.left())
      record.update(exit_code=proc.returncode, tail=proc.stdout[-600:])
    except subprocess.TimeoutExpired:
      record["error"] = "timeout (section budget)"
    record["wall_s"] = time.perf_counter() - t0
    if xml.exists():
      record.update(_junit_counts(xml))
    out.append(record)
  return out


def section_resnet50(plan: Plan, budget: Budget, work: Path, backend: str) -> list[dict[str, Any]]:
  """JAX and PyTorch entries in priority order: the bf16 pair of each variant, then float32, then batch search."""
  # A persistent compilation cache shared by the JAX children: an entry repeating an earlier one's shapes (the
  # dry run's batch "search") loads its program instead of compiling it again.
  env = dict(child_env(backend), JAX_COMPILATION_CACHE_DIR=str(work / "jax_cache"))
  torch_env = child_env("cpu")  # the PyTorch children never need JAX's device
  out: list[dict[str, Any]] = []

  def jax_run(entries):
    out.extend(dict(r, framework="jax") for r in run_entries("jax", plan, entries, budget, work, env))

  def torch_run(entries):
    out.extend(dict(r, framework="torch") for r in run_entries("torch", plan, entries, budget, work, torch_env))

  for dtype in DTYPES:
    jax_entries = [dict(variant=v, dtype=dtype, batch=plan.batch) for v in plan.jax_variants[dtype]]
    torch_entries = [dict(variant=v, dtype=dtype, batch=plan.batch, compile=False)
                     for v in plan.torch_variants[dtype]]
    if dtype == "bfloat16":
      torch_entries += [dict(variant=v, dtype=dtype, batch=plan.batch, compile=True) for v in plan.torch_compile]
    if plan.one_entry_per_process:  # interleave so that each variant's pair is measured before the next variant
      order = sorted(jax_entries + torch_entries, key=lambda e: (list(VARIANTS).index(e["variant"]),
                                                                  "compile" in e, e.get("compile", False)))
      for e in order:
        (torch_run if "compile" in e else jax_run)([e])
    else:
      jax_run(jax_entries)
      torch_run(torch_entries)
  # The largest power-of-two batch that fits (same, bf16): stop at the first failure.
  for framework in ("jax", "torch"):
    for b in plan.max_batches:
      entry = dict(variant="same", dtype="bfloat16", batch=b, search=True)
      if framework == "torch":
        entry["compile"] = False
      n = len(out)
      (jax_run if framework == "jax" else torch_run)([entry])
      if any("error" in r for r in out[n:]):
        break
  return out


def section_equivalence(plan: Plan, budget: Budget, work: Path) -> list[dict[str, Any]]:
  entries = [dict(variant=v) for v in TORCH_VARIANTS]
  grouped = dataclasses.replace(plan, one_entry_per_process=False)  # tiny: one process for all
  return run_entries("equivalence", grouped, entries, budget, work, child_env("cpu"))


def section_ops(plan: Plan, budget: Budget, work: Path, backend: str) -> list[dict[str, Any]]:
  out = []
  for framework, env in (("jax", child_env(backend)), ("torch", child_env("cpu"))):
    args = {"plan": dataclasses.asdict(plan), "framework": framework}
    records, error = spawn_worker("ops", args, budget.left(), work, env)
    out += records
    if error:
      out.append({"framework": framework, "error": error})
  return out


def _write_shard(args: tuple[str, int, int, tuple[int, int], int]) -> int:
  """Writes ``n`` random JPEG photos as serialised TFDS examples into one array_record shard; returns bytes."""
  import io

  import numpy as np
  import tensorflow_datasets as tfds
  from array_record.python import array_record_module
  from PIL import Image

  path, n, seed, (h, w), first = args
  features = tfds.builder("imagenet2012").info.features
  rng = np.random.default_rng(seed)
  writer = array_record_module.ArrayRecordWriter(path, "group_size:1")
  num_bytes = 0
  for i in range(n):
    coarse = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(coarse).resize((w, h), Image.BILINEAR).save(buf, format="JPEG", quality=90)
    example = features.serialize_example({"image": buf.getvalue(), "label": int(rng.integers(0, 1000)),
                                          "file_name": f"synthetic_{first + i}.JPEG"})
    writer.write(example)
    num_bytes += len(example)
  writer.close()
  return num_bytes


def write_records(plan: Plan, data_dir: Path) -> dict[str, Any]:
  """A TFDS ``imagenet2012`` data set of random JPEG photos, in array_record, written without TensorFlow.

  TFDS serialises examples with its own feature codecs (no TensorFlow) and ``array_record`` writes the shards
  (``plan.record_shards`` processes in parallel); ``dataset_info.json`` / ``features.json`` come from the
  registered builder's info, so ``tfds.data_source`` and this project's grain pipeline read the files exactly
  as a ``tfds build`` output. The photos are smooth random fields of ``plan.record_size`` (JPEG sizes closer
  to real photos' than white noise would give).
  """
  import multiprocessing

  import tensorflow_datasets as tfds

  t0 = time.perf_counter()
  builder = tfds.builder("imagenet2012", data_dir=str(data_dir), file_format="array_record")
  os.makedirs(builder.data_dir, exist_ok=True)
  jobs, templates = [], {}
  for s, (split, n) in enumerate((("train", plan.train_records), ("validation", plan.val_records))):
    shards = max(1, min(plan.record_shards, n))
    templates[split] = tfds.core.ShardedFileTemplate(
        data_dir=builder.data_dir, template="{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
        dataset_name="imagenet2012", split=split, filetype_suffix="array_record")
    lengths = [n // shards + (i < n % shards) for i in range(shards)]
    for i, length in enumerate(lengths):
      path = os.fspath(templates[split].sharded_filepath(shard_index=i, num_shards=shards))
      jobs.append((split, length, (path, length, 1000 * s + i, tuple(plan.record_size), sum(lengths[:i]))))
  with multiprocessing.get_context("spawn").Pool(min(len(jobs), os.cpu_count() or 1)) as pool:
    sizes = pool.map(_write_shard, [job for _, _, job in jobs])
  splits = []
  for split in templates:
    mine = [(length, size) for (sp, length, _), size in zip(jobs, sizes) if sp == split]
    splits.append(tfds.core.SplitInfo(name=split, shard_lengths=[m[0] for m in mine],
                                      num_bytes=sum(m[1] for m in mine), filename_template=templates[split]))
  builder.info.set_splits(tfds.core.SplitDict(splits))
  builder.info.set_file_format("array_record")
  builder.info.write_to_directory(builder.data_dir)
  return {"records": plan.train_records + plan.val_records, "bytes": sum(sizes),
          "seconds": time.perf_counter() - t0, "path": builder.data_dir}


RN50_FULL_CONFIG = '''"""configs/rn50_full.py, shortened for benchmarks/device_check.py (synthetic records)."""
from configs import rn50_full


def get_config():
  config = rn50_full.get_config()
  config.num_steps = {steps}
  config.batch_size = {batch}
  config.model.name = "{model}"
  config.model.width = {width}
  config.precision.compute_dtype = "{dtype}"
  config.data.data_dir = "{data_dir}"
  config.data.image_size = {image_size}
  config.data.worker_count = {workers}
  config.data.log_every = {log_every}  # input-pipeline images/s in the log
  config.eval.every_n_epochs = 100000  # validate once, at the end
  config.eval.batch_size = {batch}
  config.checkpoint.every_n_epochs = 0  # saved at the end only
  config.log.every_n_steps = 50
  return config
'''


def section_train(plan: Plan, budget: Budget, work: Path, backend: str, dry_run: bool) -> dict[str, Any]:
  data_dir = work / "tfds"
  result: dict[str, Any] = {"records": write_records(plan, data_dir)}
  pipeline = run_entries("pipeline", dataclasses.replace(plan, one_entry_per_process=True),
                         [dict(workers=w) for w in plan.pipeline_workers], budget, work, child_env("cpu"),
                         extra={"data_dir": str(data_dir)})
  result["pipeline"] = pipeline
  workers = max(plan.pipeline_workers)
  workdir = work / "train_rn50_full"
  # configs/rn50_full.py with this run's length, data and logging (keys a config file must define before the
  # command line may override them: model.width, data.log_every); the file is recorded in the result.
  config = work / "device_check_rn50_full.py"
  config.write_text(RN50_FULL_CONFIG.format(
      data_dir=str(data_dir), steps=plan.train_steps, batch=plan.train_batch, workers=workers,
      image_size=plan.train_image_size, width=plan.train_width, model=plan.train_model, dtype=plan.train_dtype,
      log_every=max(1, plan.train_steps // 4)))
  result["config"] = config.read_text()
  # absl's --logger_levels shows the pipeline's throughput lines (logging.info of jaxborders.data.pipeline).
  cmd = [sys.executable, "-m", "train.main", "--config", str(config), "--workdir", str(workdir),
         "--logger_levels=jaxborders.data.pipeline:INFO"]
  result["command"] = " ".join(cmd[1:])
  t0 = time.perf_counter()
  env = child_env(backend)
  env["JAXBORDERS_XLA_CACHE"] = ""  # measure a cold start, as a fresh machine has
  if budget.left() < 1:
    result["error"] = "skipped: section budget spent"
    return result
  try:
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=budget.left())
    log = proc.stdout + proc.stderr
    result["exit_code"] = proc.returncode
    if proc.returncode != 0:
      result["error"] = f"train.main exit code {proc.returncode}"
  except subprocess.TimeoutExpired as e:  # completed epochs are in metrics.jsonl all the same
    result["error"] = "timeout (section budget)"
    log = "".join(v.decode(errors="replace") if isinstance(v, bytes) else (v or "") for v in (e.stdout, e.stderr))
  result["log_tail"] = log[-2500:]
  result["wall_s"] = time.perf_counter() - t0
  result.update(_train_metrics(workdir, log))
  return result


def _train_metrics(workdir: Path, log: str) -> dict[str, Any]:
  """Training images/s per epoch (metrics.jsonl: data waits included) and the pipeline's own log lines."""
  out: dict[str, Any] = {}
  path = workdir / "metrics.jsonl"
  if path.exists():
    rates = [r["train/images_per_s"] for r in map(json.loads, path.read_text().splitlines())
             if "train/images_per_s" in r]
    out["train_images_per_s_by_epoch"] = rates
    out["train_images_per_s_steady"] = (sorted(rates[1:])[len(rates[1:]) // 2] if len(rates) > 1 else
                                        (rates[0] if rates else None))
  summary = workdir / "summary.json"
  if summary.exists():
    s = json.loads(summary.read_text())
    out["summary"] = {k: s.get(k) for k in ("status", "steps", "images_per_s", "first_epoch_s", "epoch_s",
                                            "train_wall_s", "final_train_loss")}
  lines = [line for line in log.splitlines() if "data/images_per_sec" in line]
  out["data_log_lines"] = lines[-5:]
  rates = [float(line.split("data/images_per_sec=")[1].split(",")[0]) for line in lines]
  out["data_images_per_s_median"] = sorted(rates)[len(rates) // 2] if rates else None
  return out


# ---------------------------------------------------------------------------------------------------------------
# Report.


def _gib(b: float | None) -> str:
  return "—" if b is None else f"{b / 2**30:.1f}"


def _num(v: float | None, fmt: str = "{:.0f}") -> str:
  return "—" if v is None else fmt.format(v)


def _ratio(a: float | None, b: float | None) -> str:
  return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def _best_torch(rows: list[dict[str, Any]], variant: str, dtype: str, batch: int) -> dict[str, Any] | None:
  ok = [r for r in rows if r.get("framework") == "torch" and r["variant"] == variant and r["dtype"] == dtype
        and r["batch"] == batch and "error" not in r and not r.get("search")]
  return max(ok, key=lambda r: r["images_per_s"]) if ok else None


def resnet_table(plan: Plan, rows: list[dict[str, Any]]) -> str:
  """Markdown: per variant and dtype, JAX vs best PyTorch (eager or compiled), ratios to ``same``."""
  header = ("| variant | dtype | JAX img/s | JAX peak GiB | GFLOP/img (XLA) | PyTorch img/s | PyTorch peak GiB | "
            "JAX / PyTorch | JAX time / same | FLOP / same | PyTorch time / same |")
  lines = [header, "|" + "---|" * (header.count("|") - 1)]
  for dtype in DTYPES:
    jx = {r["variant"]: r for r in rows if r.get("framework") == "jax" and r["dtype"] == dtype
          and r["batch"] == plan.batch and not r.get("search")}
    base, tbase = jx.get("same", {}), _best_torch(rows, "same", dtype, plan.batch) or {}
    for v in VARIANTS:
      j = jx.get(v, {})
      t = _best_torch(rows, v, dtype, plan.batch) if v in TORCH_VARIANTS else None
      j_ok = "error" not in j and j
      ips = j.get("images_per_s") if j_ok else None
      flops = j.get("flops") if j_ok else None
      tname = "—" if t is None else f"{t['images_per_s']:.0f}" + (" (compiled)" if t.get("compiled") else " (eager)")
      torch_err = [r for r in rows if r.get("framework") == "torch" and r.get("variant") == v
                   and r.get("dtype") == dtype and "error" in r]
      if t is None and torch_err:
        tname = "error"
      lines.append(
          f"| {v} | {dtype} | {_num(ips) if j_ok else ('error' if j else '—')} | {_gib(j.get('peak_bytes'))} | "
          f"{_num(flops / plan.batch / 1e9 if flops else None, '{:.2f}')} | {tname} | "
          f"{_gib(t.get('peak_bytes')) if t else '—'} | {_ratio(ips, t['images_per_s'] if t else None)} | "
          f"{_ratio(base.get('images_per_s'), ips)} | {_ratio(flops, base.get('flops'))} | "
          f"{_ratio(tbase.get('images_per_s'), t['images_per_s'] if t else None)} |")
  return "\n".join(lines)


def report_md(result: dict[str, Any]) -> str:
  plan = plan_from_dict(result["plan"]) if isinstance(result.get("plan"), dict) else FULL
  env = result.get("env", {})
  out = [f"# device_check ({'dry run, CPU, tiny sizes' if result.get('dry_run') else 'full size'})", "",
         f"{env.get('time_utc', '')}; devices {env.get('devices')}; jax {env.get('jax')}, jaxlib "
         f"{env.get('jaxlib')}, flax {env.get('flax')}, torch {env.get('torch')}; {env.get('nvidia_smi') or ''}",
         "", "## Sections", "", "| section | status | seconds | budget |", "|---|---|---|---|"]
  for name, s in result.get("sections", {}).items():
    out.append(f"| {name} | {s['status']} | {s['seconds']:.1f} | {s['budget']:.0f} |")
  tests = result.get("tests") or []
  if tests:
    out += ["", "## Tests on this device", "", "| pytest args | passed | failed | errors | skipped | seconds |",
            "|---|---|---|---|---|---|"]
    for t in tests:
      out.append(f"| `{t['args']}` | {t.get('passed', '—')} | {t.get('failures', '—')} | {t.get('errors', '—')} | "
                 f"{t.get('skipped', '—')} | {t.get('wall_s', 0):.1f} |" + (f" {t['error']}" if "error" in t else ""))
  eqv = result.get("equivalence") or []
  if eqv:
    out += ["", "## PyTorch networks = ours (float32 logits, training-mode BatchNorm, our weights loaded)", "",
            "| variant | max abs diff | max abs logit |", "|---|---|---|"]
    for r in eqv:
      out.append(f"| {r['variant']} | {r.get('max_abs_diff', r.get('error'))} | {r.get('max_abs_logit', '—')} |")
  rows = result.get("resnet50") or []
  if rows:
    out += ["", f"## ResNet-50 training step, {plan.image_size}x{plan.image_size}, batch {plan.batch}", "",
            resnet_table(plan, rows)]
    search = [r for r in rows if r.get("search")]
    if search:
      out += ["", "Largest batch (same, bf16): " + ", ".join(
          f"{r['framework']} {r['batch']}: " + (f"{r['images_per_s']:.0f} img/s, {_gib(r.get('peak_bytes'))} GiB"
                                                if "error" not in r else "failed") for r in search)]
    errs = [r for r in rows if "error" in r]
    if errs:
      out += ["", "Errors: " + "; ".join(f"{r['framework']} {r['variant']} {r['dtype']} b{r['batch']}"
                                           f"{' compile' if r.get('compile') else ''}: {str(r['error'])[:160]}"
                                           for r in errs)]
  ops = result.get("ops") or []
  if ops:
    out += ["", f"## BlurPool / APS alone, {'x'.join(map(str, plan.ops_shape))} (NHWC)", "",
            "| framework | op | dtype | ms | GB/s (in+out) |", "|---|---|---|---|---|"]
    n, h, w, c = plan.ops_shape
    for r in ops:
      if "op" not in r:
        out.append(f"| {r['framework']} | error: {str(r.get('error'))[:200]} | | | |")
        continue
      size = 2 if r["dtype"] == "bfloat16" else 4
      moved = size * n * h * w * c * (1 + 0.25) * (2 if "bwd" in r["op"] else 1)
      ms = r.get("ms")
      out.append(f"| {r['framework']} | {r['op']} | {r['dtype']} | {_num(ms, '{:.3f}')} | "
                 f"{_num(moved / (ms * 1e-3) / 1e9 if ms else None, '{:.1f}')} |" + (
                     f" {r['error']}" if "error" in r else ""))
  train = result.get("train") or {}
  if train:
    out += ["", "## rn50_full end to end (synthetic ImageNet JPEG records, TFDS array_record + grain)", ""]
    rec = train.get("records") or {}
    out.append(f"Records: {rec.get('records')} ({_num((rec.get('bytes') or 0) / 2**20, '{:.0f}')} MiB) written in "
               f"{_num(rec.get('seconds'), '{:.1f}')} s.")
    for p in train.get("pipeline") or []:
      out.append(f"- input pipeline alone, {p['workers']} workers: " + (
          f"{p['images_per_s']:.0f} img/s (first batch {p['first_batch_s']:.1f} s)" if "error" not in p
          else f"error {str(p['error'])[:200]}"))
    out.append(f"- train.main: exit {train.get('exit_code')}, steady training "
               f"{_num(train.get('train_images_per_s_steady'), '{:.4g}')} img/s (per epoch, the first compiles: "
               f"{', '.join(f'{v:.4g}' for v in train.get('train_images_per_s_by_epoch') or [])}); input pipeline "
               f"inside the run (median of its log lines): {_num(train.get('data_images_per_s_median'), '{:.4g}')} "
               f"img/s; {train.get('error', '')}")
    for line in train.get("data_log_lines") or []:
      out.append(f"  - `{line.strip()[-160:]}`")
    out.append(f"- command: `python {train.get('command', '')}` (the config: configs/rn50_full.py with the "
               "run length, data folder, worker count and logging set; in device_check.json)")
  return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--out", default="device_check_out", help="folder for device_check.json / .md and scratch")
  ap.add_argument("--dry-run", action="store_true", help="tiny CPU mode: every section's code path, small sizes")
  ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
  ap.add_argument("--budget", action="append", default=[], metavar="SECTION=SECONDS",
                  help="override a section's time budget (repeatable)")
  ap.add_argument("--work", default="", help="scratch folder (records, run dirs); default: a temporary folder")
  ap.add_argument("--worker", default="", help=argparse.SUPPRESS)
  ap.add_argument("--worker-args", default="", help=argparse.SUPPRESS)
  ap.add_argument("--worker-results", default="", help=argparse.SUPPRESS)
  args = ap.parse_args(argv)
  if args.worker:
    with open(args.worker_args) as f:
      run_worker(args.worker, json.load(f), args.worker_results)
    return {}
  sections = [s for s in args.sections.split(",") if s]
  for s in sections:
    if s not in SECTIONS:
      raise ValueError(f"--sections: {s!r} is not a section; accepted values: {', '.join(SECTIONS)}.")
  budgets = dict(BUDGET_S)
  for item in args.budget:
    name, _, value = item.partition("=")
    if name not in SECTIONS or not value:
      raise ValueError(f"--budget {item!r}: expected SECTION=SECONDS with SECTION one of {', '.join(SECTIONS)}.")
    budgets[name] = float(value)
  plan = DRY if args.dry_run else FULL
  out_dir = Path(args.out)
  out_dir.mkdir(parents=True, exist_ok=True)
  work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="device_check_"))
  work.mkdir(parents=True, exist_ok=True)
  result: dict[str, Any] = {"dry_run": args.dry_run, "plan": dataclasses.asdict(plan), "sections": {}}
  # The orchestrator itself never touches the accelerator (children measure alone on it): JAX on CPU here.
  os.environ.setdefault("DEVICE_CHECK_BACKEND", _child_backend())
  backend = os.environ["DEVICE_CHECK_BACKEND"]
  for name in sections:
    budget = Budget(budgets[name])
    t0 = time.perf_counter()
    status = "ok"
    print(f"[device_check] {name} (budget {budgets[name]:.0f} s)", flush=True)
    try:
      if name == "env":
        result["env"] = section_env(plan, budget, work, args.dry_run, backend)
        result["env"]["child_backend"] = backend
      elif name == "tests":
        result["tests"] = section_tests(plan, budget, work, backend)
        status = "ok" if all(t.get("exit_code") == 0 for t in result["tests"]) else "failures"
      elif name == "equivalence":
        result["equivalence"] = section_equivalence(plan, budget, work)
      elif name == "resnet50":
        result["resnet50"] = section_resnet50(plan, budget, work, backend)
      elif name == "ops":
        result["ops"] = section_ops(plan, budget, work, backend)
      elif name == "train":
        result["train"] = section_train(plan, budget, work, backend, args.dry_run)
      records = result.get(name)
      if isinstance(records, list) and any("error" in r for r in records):
        status = "partial"
      if isinstance(records, dict) and "error" in records:
        status = "partial"
    except Exception as e:  # noqa: BLE001  (a failing section is recorded; the next one runs)
      status = "error"
      result.setdefault("errors", {})[name] = traceback.format_exc(limit=8)
      print(f"[device_check] {name} failed: {type(e).__name__}: {e}", flush=True)
    result["sections"][name] = {"status": status, "seconds": time.perf_counter() - t0, "budget": budgets[name]}
    _write(out_dir, result)
  md = _write(out_dir, result)
  print(md, flush=True)
  return result


def _child_backend() -> str:
  """The accelerator the children use: 'cuda' when PyTorch or nvidia-smi sees a GPU, else 'cpu' (the parent
  does not initialise JAX's GPU backend, which would take device memory from the measured children)."""
  try:
    import torch
    if torch.cuda.is_available():
      return "cuda"
  except ImportError:
    pass
  try:
    ok = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).returncode == 0
    return "cuda" if ok else "cpu"
  except (OSError, subprocess.TimeoutExpired):
    return "cpu"


def _write(out_dir: Path, result: dict[str, Any]) -> str:
  (out_dir / "device_check.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
  md = report_md(result)
  (out_dir / "device_check.md").write_text(md)
  return md


if __name__ == "__main__":
  if "--worker" not in sys.argv:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # the orchestrator stays off the accelerator
  main()
