"""Pretrained weights through a local HTTP server on 127.0.0.1 (started here, serving checkpoints made here): the
hash is checked, the cache reused, a corrupt or cut download leaves nothing behind, another num_classes gets a
fresh head, unknown names list the known ones, and no network is a clear error."""

from __future__ import annotations

import hashlib
import http.server
import io
import logging
import os
import socket
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from flax import serialization, traverse_util  # noqa: E402

from jaxborders import convert  # noqa: E402
from jaxborders.models import get_model  # noqa: E402
from jaxborders.models import pretrained  # noqa: E402


class _Server:
  """Serves ``files`` (name -> bytes); names starting with ``cut`` announce more bytes than they send."""

  def __init__(self, files: dict[str, bytes]):
    self.files, self.requests = files, []
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def do_GET(self):  # noqa: N802 (http.server's name)
        name = self.path.lstrip("/")
        server.requests.append(name)
        if name not in server.files:
          self.send_error(404)
          return
        body = server.files[name]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) + (1000 if name.startswith("cut") else 0)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

      def log_message(self, *args):
        pass

    self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

  def url(self, name: str) -> str:
    return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

  def close(self):
    self.httpd.shutdown()
    self.httpd.server_close()


def _random_variables(model, seed=0):
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(model.example_input_shape(1)))
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape), s.dtype), shapes)


def _torch_bytes(state) -> bytes:
  buffer = io.BytesIO()
  torch.save(state, buffer)
  return buffer.getvalue()


@pytest.fixture(scope="module")
def checkpoint():
  model = get_model("resnet18", num_classes=3, width=8)
  variables = _random_variables(model)
  data = _torch_bytes(convert.to_torch_state_dict(model, variables))
  return model, variables, data, hashlib.sha256(data).hexdigest()


@pytest.fixture()
def server(checkpoint, tmp_path, monkeypatch):
  monkeypatch.setenv("JAXBORDERS_CACHE", str(tmp_path / "cache"))
  _, _, data, digest = checkpoint
  srv = _Server({f"toy-{digest[:8]}.pth": data, "toy-0badbeef.pth": data, f"cut-{digest[:8]}.pth": data[:-50],
                 "plain.pth": data})
  yield srv
  srv.close()


def _assert_same(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def test_url_download_is_checked_cached_and_reused(checkpoint, server, tmp_path):
  model, variables, _, digest = checkpoint
  url = server.url(f"toy-{digest[:8]}.pth")
  model2, loaded = get_model("resnet18", pretrained=url, num_classes=3, width=8)
  assert model2 == model
  _assert_same(loaded, variables)
  assert os.listdir(tmp_path / "cache") == [f"toy-{digest[:8]}.pth"]
  _assert_same(pretrained.load_pretrained(model, url, progress=False), variables)
  assert server.requests == [f"toy-{digest[:8]}.pth"]  # the second load used the cache


def test_registered_checkpoint_with_full_hash(checkpoint, server, monkeypatch):
  model, variables, _, digest = checkpoint
  entry = pretrained.Checkpoint("resnet18", server.url("plain.pth"), digest, "plain.pth")
  monkeypatch.setitem(pretrained.CHECKPOINTS, "test/toy", entry)
  monkeypatch.setitem(pretrained.DEFAULT_CHECKPOINTS, "resnet18", "test/toy")
  _, loaded = get_model("resnet18", pretrained=True, num_classes=3, width=8)
  _assert_same(loaded, variables)
  with pytest.raises(ValueError, match="checkpoint 'test/toy' is for model 'resnet18', not 'resnet34'"):
    get_model("resnet34", pretrained="test/toy")


def test_corrupt_and_cut_downloads_leave_nothing(checkpoint, server, tmp_path):
  model, _, _, digest = checkpoint
  with pytest.raises(ValueError, match=r"sha256 [0-9a-f]{64} does not match the expected 0badbeef \(prefix\).*"
                                       r"deleted; nothing was kept"):
    pretrained.load_pretrained(model, server.url("toy-0badbeef.pth"), progress=False)
  with pytest.raises(ValueError, match="does not match the expected 00ff"):
    pretrained.download(server.url("plain.pth"), sha256="00ff", progress=False)
  with pytest.raises(pretrained.DownloadError, match="cut after|incomplete"):
    pretrained.load_pretrained(model, server.url(f"cut-{digest[:8]}.pth"), progress=False)
  with pytest.raises(pretrained.DownloadError, match="could not download .*Not Found"):
    pretrained.load_pretrained(model, server.url("missing.pth"), progress=False)
  assert os.listdir(tmp_path / "cache") == []  # no file, no partial file


def test_no_network_is_a_clear_error(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXBORDERS_CACHE", str(tmp_path))
  with socket.socket() as s:  # a port nobody listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  with pytest.raises(pretrained.DownloadError, match=f"could not download http://127.0.0.1:{port}/w.pth: .*"
                                                     "download the file by hand"):
    pretrained.download(f"http://127.0.0.1:{port}/w.pth", progress=False, timeout=5)
  assert os.listdir(tmp_path) == []


def test_new_head_for_other_num_classes(checkpoint, server, caplog):
  _, variables, _, digest = checkpoint
  with caplog.at_level(logging.WARNING, logger="jaxborders"):
    model, loaded = get_model("resnet18", pretrained=server.url(f"toy-{digest[:8]}.pth"), num_classes=5, width=8)
  assert "new head for 5 classes (the checkpoint has 3): re-initialised fc.bias, fc.weight" in caplog.text
  fresh = pretrained._fresh_leaves(model, None, None, [("params", "fc", "kernel"), ("params", "fc", "bias")])
  fresh = traverse_util.unflatten_dict(fresh)
  flat, flat_ckpt = traverse_util.flatten_dict(loaded), traverse_util.flatten_dict(variables)
  assert set(flat) == set(flat_ckpt)
  for path, leaf in flat.items():
    if path[:2] == ("params", "fc"):  # the head: fresh values of the new shape
      assert leaf.shape[-1] == 5
      np.testing.assert_array_equal(np.asarray(leaf), np.asarray(fresh[path[0]][path[1]][path[2]]), err_msg=str(path))
    else:  # everything else: the checkpoint's
      np.testing.assert_array_equal(np.asarray(leaf), np.asarray(flat_ckpt[path]), err_msg=str(path))
  assert float(jnp.abs(flat[("params", "fc", "kernel")]).sum()) > 0  # initialised, not zeros


def test_local_files_msgpack_and_other_architecture(checkpoint, tmp_path):
  model, variables, data, _ = checkpoint
  (tmp_path / "w.msgpack").write_bytes(serialization.to_bytes(variables))
  _assert_same(pretrained.load_pretrained(model, tmp_path / "w.msgpack"), variables)
  (tmp_path / "params.msgpack").write_bytes(serialization.to_bytes(variables["params"]))  # no BatchNorm statistics
  with pytest.raises(convert.StateDictMismatchError, match="missing keys: batch_stats/bn1/mean"):
    pretrained.load_pretrained(model, str(tmp_path / "params.msgpack"))
  (tmp_path / "cut.msgpack").write_bytes(serialization.to_bytes(variables)[:-7])
  with pytest.raises(ValueError, match="cut.msgpack is not a readable .msgpack"):
    pretrained.load_pretrained(model, tmp_path / "cut.msgpack")
  (tmp_path / "w.pth").write_bytes(data)
  with pytest.raises(convert.StateDictMismatchError, match="missing keys: .*layer1.2.conv1.weight"):
    get_model("resnet34", pretrained=str(tmp_path / "w.pth"), width=8)


def test_unknown_sources_list_the_known_ones():
  with pytest.raises(ValueError, match="neither an existing file, a URL nor a registered checkpoint; registered "
                                       "checkpoints: .*torchvision/resnet18"):
    get_model("resnet18", pretrained="torchvision/resnet19")
  with pytest.raises(ValueError, match="model 'resnet3d_18' has no default checkpoint; models with one: .*resnet18"):
    get_model("resnet3d_18", pretrained=True)
  with pytest.raises(ValueError, match="pretrained=3 is not supported"):
    get_model("resnet18", pretrained=3)
  with pytest.raises(FileNotFoundError, match="no working download address.*403"):
    get_model("resnet18", pretrained="antialiased-cnns/resnet18_lpf3", antialias="blur:binomial:3")


def test_registry_entries_are_consistent():
  """Every entry names a registered model, and torchvision entries check the hash prefix their file names carry."""
  from jaxborders.models import list_models

  for name, entry in pretrained.CHECKPOINTS.items():
    assert entry.model in list_models(), name
    if name.startswith("torchvision/"):
      assert entry.url.endswith(entry.filename) and entry.filename.split("-")[-1] == f"{entry.sha256}.pth", name
    else:
      assert entry.url is None and entry.manual, name
