"""Pretrained weights for the zoo: registered checkpoints, a download cache with hash checks, new heads.

    model, variables = jaxborders.models.get_model('resnet18', pretrained=True, num_classes=10)
    variables = load_pretrained(model, 'torchvision/resnet50')            # a registered checkpoint
    variables = load_pretrained(model, 'https://host/resnet18-f37072fd.pth')
    variables = load_pretrained(model, 'weights.safetensors')             # .pth / .safetensors / .msgpack

Sources:

* a **registered checkpoint** (``list_checkpoints()``; ``pretrained=True`` picks the model's default). The
  torchvision ImageNet weights are registered with their ``download.pytorch.org`` address. torchvision puts the
  first 8 hex digits of each file's sha256 into its name (``resnet18-f37072fd.pth``), and that prefix is what
  we check for them (as ``torch.hub``'s ``check_hash`` does); entries with a full sha256 check all of it.
* a **URL**: downloaded once into the cache (``$JAXBORDERS_CACHE``, else ``~/.cache/jaxborders``) under its file
  name, with a progress bar (stderr). The sha256 is checked against ``sha256=`` when given, else against a
  ``-<hex>.`` prefix in the file name when there is one (else the file is kept unchecked and its sha256 logged).
  The download goes to a temporary file that is renamed into place only after every check passed: a cut
  connection or a hash mismatch leaves nothing in the cache and says so.
* a **local file**: a ``torch.save`` state_dict (``.pth``, ``.pt``, ``.bin``; loaded with ``weights_only=True``),
  ``.safetensors``, or our own ``.msgpack`` (``flax.serialization.to_bytes`` of ``{'params', 'batch_stats'}`` or
  of ``params`` alone).

Weights released by antialiased-cnns (Zhang 2019) and by the F-Conv authors (Kayhan & van Gemert 2020, code:
CNNs-Without-Borders) have no working address we could verify (antialiased-cnns' S3 bucket answers 403): their
entries are ``manual``, and ``load_pretrained`` names the file to place in the cache and where to look for it.

A ``num_classes`` other than the checkpoint's re-initialises the classifier (logged on the ``jaxborders``
logger): every leaf whose checkpoint shape differs from the model's only in its last (class) dimension takes its
value from a fresh ``model.init``. Any other difference (another architecture) is an error naming the keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization, traverse_util

from jaxborders import convert

logger = logging.getLogger("jaxborders")

TORCH_SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".bin", ".safetensors")
FLAX_SUFFIXES: tuple[str, ...] = (".msgpack",)


class DownloadError(OSError):
  """A URL could not be fetched (no network, refused, HTTP error, cut connection); nothing was cached."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
  """A registered checkpoint: where it lives, which model it fits, and how to check it.

  Attributes:
    model: the registered model name whose default arguments the weights fit.
    url: download address (``None`` for manual entries).
    sha256: the full hex digest, or a prefix (torchvision names carry 8 hex digits).
    filename: the name in the cache.
    naming: the state_dict naming (``jaxborders.convert.NAMINGS``).
    manual: how to obtain the file when there is no working address.
    model_kwargs: arguments the model needs for these weights (e.g. ``antialias``).
  """

  model: str
  url: str | None
  sha256: str | None
  filename: str
  naming: str = "torchvision"
  manual: str | None = None
  model_kwargs: tuple[tuple[str, Any], ...] = ()


def _torchvision(model: str, file: str) -> Checkpoint:
  digest = re.search(r"-([0-9a-f]{8,64})\.pth$", file)
  return Checkpoint(model, f"https://download.pytorch.org/models/{file}", digest.group(1) if digest else None, file)


_AA_STEPS = ("antialiased-cnns (https://github.com/adobe/antialiased-cnns) published these weights on an S3 bucket "
             "that now answers 403. If you have the file (e.g. from a colleague or an archive), copy it into the cache "
             "directory as {filename} and load it again, or pass its local path as pretrained=.")
_FCONV_STEPS = ("We know of no download address we could verify for the F-Conv authors' ImageNet ResNet-50 (Kayhan "
                "& van Gemert, code: CNNs-Without-Borders); look for it in their repository's README. Download it by "
                "hand, then copy it into the cache directory as {filename}, or pass its local path as pretrained=.")

CHECKPOINTS: dict[str, Checkpoint] = {
    **{f"torchvision/{m}": _torchvision(m, f) for m, f in [
        ("resnet18", "resnet18-f37072fd.pth"), ("resnet34", "resnet34-b627a593.pth"),
        ("resnet50", "resnet50-0676ba61.pth"), ("resnet101", "resnet101-63fe2227.pth"),
        ("resnet152", "resnet152-394f9c45.pth"),
        ("vgg11", "vgg11-8a719046.pth"), ("vgg13", "vgg13-19584684.pth"), ("vgg16", "vgg16-397923af.pth"),
        ("vgg11_bn", "vgg11_bn-6002323d.pth"), ("vgg13_bn", "vgg13_bn-abd245e5.pth"),
        ("vgg16_bn", "vgg16_bn-6c64b313.pth"),
        ("densenet121", "densenet121-a639ec97.pth")]},
    **{f"antialiased-cnns/{m}_lpf{f}": Checkpoint(
        m, None, None, f"{m}_lpf{f}.pth", naming="antialiased", manual=_AA_STEPS,
        model_kwargs=(("antialias", f"blur:binomial:{f}"),))
       for m in ("resnet18", "resnet34", "resnet50", "resnet101") for f in (2, 3, 5)},
    "fconv/resnet50_full": Checkpoint("resnet50", None, None, "resnet50_fconv.pth", manual=_FCONV_STEPS,
                                      model_kwargs=(("conv_mode", "full"),)),
}

DEFAULT_CHECKPOINTS: dict[str, str] = {c.model: name for name, c in CHECKPOINTS.items()
                                       if name.startswith("torchvision/")}


def list_checkpoints() -> list[str]:
  """Names of the registered checkpoints, sorted."""
  return sorted(CHECKPOINTS)


def cache_dir() -> str:
  """``$JAXBORDERS_CACHE``, else ``~/.cache/jaxborders``."""
  return os.environ.get("JAXBORDERS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "jaxborders")


# ---------------------------------------------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------------------------------------------


def _hash_from_name(filename: str) -> str | None:
  match = re.search(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$", filename)
  return match.group(1) if match else None


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _check_digest(digest: str, expected: str | None, what: str) -> None:
  if expected is not None and not digest.startswith(expected.lower()):
    raise ValueError(f"{what}: sha256 {digest} does not match the expected {expected} "
                     f"({'prefix' if len(expected) < 64 else 'digest'}).")


def download(url: str, sha256: str | None = None, filename: str | None = None, cache: str | None = None,
             progress: bool = True, timeout: float = 30.0) -> str:
  """Downloads ``url`` once into the cache and returns the local path.

  Args:
    url: ``http(s)://`` (or ``file://``) address.
    sha256: expected digest or hex prefix; default: the ``-<hex>.`` part of the file name, if any.
    filename: name in the cache (default: the URL's last path component).
    cache: the cache directory (default ``cache_dir()``).
    progress: show a progress bar on stderr.
    timeout: seconds to wait for the server.

  Returns:
    The path of the cached file (reused, after a hash check, when it is already there).

  Raises:
    DownloadError: the URL could not be fetched completely; nothing was kept.
    ValueError: the sha256 does not match (the downloaded bytes were deleted), or a cached file fails its check.
  """
  filename = filename or os.path.basename(urllib.parse.urlparse(url).path)
  if not filename:
    raise ValueError(f"cannot name a cache file for url={url!r}; pass filename=.")
  expected = sha256 or _hash_from_name(filename)
  cache = cache or cache_dir()
  os.makedirs(cache, exist_ok=True)
  dest = os.path.join(cache, filename)
  if os.path.exists(dest):
    _check_digest(_sha256(dest), expected, f"cached file {dest} (delete it to download again)")
    return dest
  tmp = f"{dest}.part-{os.getpid()}"
  try:
    digest = _fetch(url, tmp, progress, timeout)
    _check_digest(digest, expected, f"download of {url}")
    if expected is None:
      logger.info("downloaded %s without a known hash; its sha256 is %s", url, digest)
    os.replace(tmp, dest)
  except ValueError as e:
    raise ValueError(f"{e} The corrupt download was deleted; nothing was kept in {cache}.") from None
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return dest


def _fetch(url: str, path: str, progress: bool, timeout: float) -> str:
  """Streams ``url`` into ``path``, returning its sha256; a short or failed transfer raises DownloadError."""
  from tqdm.auto import tqdm

  digest = hashlib.sha256()
  received = 0
  try:
    with urllib.request.urlopen(url, timeout=timeout) as response, open(path, "wb") as out:
      length = response.headers.get("Content-Length")
      total = int(length) if length else None
      with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(path).split(".part-")[0],
                disable=not progress) as bar:
        for block in iter(lambda: response.read(1 << 16), b""):
          out.write(block)
          digest.update(block)
          received += len(block)
          bar.update(len(block))
  except (urllib.error.URLError, OSError, ValueError) as e:
    reason = getattr(e, "reason", None) or e
    raise DownloadError(f"could not download {url}: {reason}. Nothing was cached; check the network, or download "
                        f"the file by hand and pass its local path as pretrained=.") from None
  except Exception as e:  # http.client.IncompleteRead and friends: a connection cut mid-transfer
    raise DownloadError(f"download of {url} was cut after {received} bytes ({type(e).__name__}); nothing was "
                        f"cached.") from None
  if total is not None and received != total:
    raise DownloadError(f"download of {url} is incomplete: {received} of {total} bytes; nothing was cached.")
  return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------


def resolve(source: Any, model_name: str | None = None, progress: bool = True) -> tuple[str, Checkpoint | None]:
  """``pretrained=`` value -> (local file path, registered entry or None)."""
  if source is True:
    if model_name not in DEFAULT_CHECKPOINTS:
      raise ValueError(f"pretrained=True: model {model_name!r} has no default checkpoint; models with one: "
                       f"{', '.join(sorted(DEFAULT_CHECKPOINTS))}. Pass a checkpoint name, URL or file instead.")
    source = DEFAULT_CHECKPOINTS[model_name]
  if not isinstance(source, (str, os.PathLike)):
    raise ValueError(f"pretrained={source!r} is not supported; accepted values: True, a registered checkpoint name "
                     f"({', '.join(list_checkpoints())}), a URL, or a path to a .pth / .safetensors / .msgpack file.")
  source = os.fspath(source)
  if source in CHECKPOINTS:
    entry = CHECKPOINTS[source]
    if model_name is not None and entry.model != model_name:
      raise ValueError(f"checkpoint {source!r} is for model {entry.model!r}, not {model_name!r}.")
    return _registered_file(source, entry, progress), entry
  if re.match(r"^(https?|file)://", source):
    return download(source, progress=progress), None
  if os.path.exists(source):
    return source, None
  raise ValueError(f"pretrained={source!r} is neither an existing file, a URL nor a registered checkpoint; "
                   f"registered checkpoints: {', '.join(list_checkpoints())}.")


def _registered_file(name: str, entry: Checkpoint, progress: bool) -> str:
  if entry.url is not None:
    return download(entry.url, entry.sha256, entry.filename, progress=progress)
  path = os.path.join(cache_dir(), entry.filename)
  if not os.path.exists(path):
    raise FileNotFoundError(f"checkpoint {name!r} has no working download address and is not in the cache ({path}). "
                            + entry.manual.format(filename=entry.filename))
  return path


def load_pretrained(model: nn.Module, source: Any, model_name: str | None = None, key: jax.Array | None = None,
                    variables: Mapping[str, Any] | None = None, naming: str | None = None,
                    progress: bool = True) -> dict[str, Any]:
  """Variables of ``model`` from a pretrained ``source``, with a fresh head when the class count differs.

  Args:
    model: an unbound zoo model (``get_model(...)``), built with the arguments the weights need.
    source: ``True`` (needs ``model_name``), a registered checkpoint name, a URL, or a local file.
    model_name: the registered name of ``model`` (for ``True`` and to check a registered entry's model).
    key: PRNG key of the fresh head (default ``jax.random.key(0)``).
    variables: freshly initialised variables of ``model`` to take a new head from (default: ``model.init``).
    naming: state_dict naming for torch files (default: the entry's, else ``'auto'``).
    progress: progress bar for downloads.

  Returns:
    ``{'params': ..., 'batch_stats': ...}`` (the collections the model has) as float32 arrays.

  Raises:
    ValueError: an unknown source, a hash mismatch, a checkpoint for another architecture (naming the keys).
    DownloadError: no network / a failed download.
  """
  path, entry = resolve(source, model_name, progress)
  init = lambda paths: _fresh_leaves(model, key, variables, paths)  # noqa: E731
  if path.endswith(FLAX_SUFFIXES):
    return _load_msgpack(model, path, init)
  if not path.endswith(TORCH_SUFFIXES):
    raise ValueError(f"{path}: unknown weight format; accepted suffixes: {', '.join(TORCH_SUFFIXES + FLAX_SUFFIXES)}.")
  state = _fix_legacy_densenet(convert.load_torch_file(path))
  naming = naming or (entry.naming if entry else "auto")
  state = _torch_new_head(model, state, naming, init)
  return convert.from_torch_state_dict(model, state, naming=naming)


def _fresh_leaves(model: nn.Module, key: jax.Array | None, variables: Mapping[str, Any] | None,
                  paths: list[tuple[str, ...]]) -> dict[tuple[str, ...], Any]:
  """Leaves at ``paths`` (collection first) of ``variables``, else of a fresh ``model.init``. Only those leaves
  leave the jitted init, so XLA drops every other initialiser and the forward pass (a fraction of a full init)."""
  def pick(tree):
    return {p: traverse_util.flatten_dict(dict(tree))[p] for p in paths}

  if variables is not None:
    return pick(variables)
  x = jnp.zeros(model.example_input_shape(1), jnp.float32)
  return jax.jit(lambda k: pick(model.init(k, x)))(jax.random.key(0) if key is None else key)


def _fix_legacy_densenet(state: dict[str, Any]) -> dict[str, Any]:
  """torchvision's DenseNet files name ``denselayer1.norm.1`` what the model calls ``denselayer1.norm1`` (torchvision
  renames them on load with the same pattern)."""
  pattern = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
  return {pattern.sub(r"\1\2", k): v for k, v in state.items()}


def _head_like(expected: tuple[int, ...], got: tuple[int, ...], num_classes: int | None) -> bool:
  """Same rank, differing only in the last (class) dim, which is the model's ``num_classes``."""
  return (num_classes is not None and len(expected) == len(got) and expected[:-1] == got[:-1]
          and expected[-1] == num_classes)


def _torch_new_head(model: nn.Module, state: dict[str, Any], naming: str, init) -> dict[str, Any]:
  naming = convert._resolve_naming(naming, keys=list(state))
  spec, _, _ = convert._spec(model, convert._expected_variables(model, None), naming)
  num_classes = getattr(model, "num_classes", None)
  replace = {}
  for key_, (collection, path, shape, kind) in spec.items():
    if key_ in state:
      got = tuple(np.shape(state[key_]))
      torch_shape = convert._torch_shape(shape, kind)
      # torch Linear weights are (out, in): the class dim is first there; compare in Flax layout.
      flax_got = tuple(np.shape(convert._to_flax_layout(np.empty(got, np.float32), kind)))
      if got != torch_shape and _head_like(shape, flax_got, num_classes):
        replace[key_] = (collection, path, kind, got)
  if not replace:
    return state
  fresh = init([(collection, *path) for collection, path, _, _ in replace.values()])
  state = dict(state)
  for key_, (collection, path, kind, got) in replace.items():
    state[key_] = convert._to_torch_layout(np.asarray(fresh[(collection, *path)], np.float32), kind)
  logger.warning("pretrained: new head for %d classes (the checkpoint has %d): re-initialised %s",
                 num_classes, next(iter(replace.values()))[3][0], ", ".join(sorted(replace)))
  return state


def _load_msgpack(model: nn.Module, path: str, init) -> dict[str, Any]:
  try:
    with open(path, "rb") as f:
      restored = serialization.msgpack_restore(f.read())
  except Exception as e:  # msgpack raises its own errors for truncated data
    raise ValueError(f"{path} is not a readable .msgpack checkpoint (truncated or corrupt?): {e}") from None
  if not isinstance(restored, Mapping):
    raise ValueError(f"{path} does not hold a variables mapping, got {type(restored).__name__}.")
  if "params" not in restored:
    restored = {"params": restored}
  expected = traverse_util.flatten_dict(jax.tree.map(lambda s: s.shape, dict(convert._expected_variables(model, None))))
  got = traverse_util.flatten_dict(dict(restored))
  num_classes = getattr(model, "num_classes", None)
  missing = ["/".join(k) for k in expected if k not in got]
  unexpected = ["/".join(k) for k in got if k not in expected]
  heads, mismatched = [], []
  for k, shape in expected.items():
    if k in got and tuple(np.shape(got[k])) != tuple(shape):
      (heads if _head_like(tuple(shape), tuple(np.shape(got[k])), num_classes) else mismatched).append(k)
  if missing or unexpected or mismatched:
    raise convert.StateDictMismatchError(missing, unexpected, [
        f"{'/'.join(k)} (expected {expected[k]}, got {np.shape(got[k])})" for k in mismatched], "msgpack")
  if heads:
    fresh = init(heads)
    for k in heads:
      got[k] = fresh[k]
    logger.warning("pretrained: new head for %d classes: re-initialised %s", num_classes,
                   ", ".join("/".join(k) for k in heads))
  for k, v in got.items():
    kind, name = convert._dtype_kind(v)
    if kind != "f":
      raise ValueError(f"{path}: {'/'.join(k)} has dtype {name}; weights must be real floating point.")
  return traverse_util.unflatten_dict({k: jnp.asarray(v, jnp.float32) for k, v in got.items()})


__all__ = ["Checkpoint", "CHECKPOINTS", "DEFAULT_CHECKPOINTS", "DownloadError", "list_checkpoints", "cache_dir",
           "download", "resolve", "load_pretrained"]
