#!/usr/bin/env bash
# Downloads the wheels that benchmarks/device_check.py needs on the offline GPU machine (its image has JAX, Flax,
# Optax, Orbax, PyTorch, torchvision, absl, etils, protobuf, pyarrow, PyYAML, ... but not these), for CPython 3.12
# on x86-64, into .whl/ at the repository root (git-ignored through .git/info/exclude). Run once, here:
#     bash benchmarks/device_wheels.sh [DEST]
# The versions are the ones this project is tested with (pyproject.toml's `data` and `train` extras).
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-.whl}"
exclude="$(git rev-parse --git-common-dir)/info/exclude"
if [[ "$dest" == ".whl" ]] && ! grep -qxF "/.whl/" "$exclude" 2>/dev/null; then echo "/.whl/" >> "$exclude"; fi
py="${PYTHON:-python3}"
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_24_x86_64
      --platform manylinux_2_31_x86_64 --platform any)
"$py" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" -d "$dest" \
  grain==0.2.18 array-record==0.8.6 tensorflow-datasets==4.9.10 ml-collections==1.1.0 tensorboardX==2.6.5 \
  dm-tree==0.1.10 tensorflow-metadata==1.21.0 googleapis-common-protos==1.76.0 simple-parsing==0.1.9 \
  docstring-parser==0.18.0 immutabledict==4.3.1 termcolor==3.3.0 toml==0.10.2 portpicker==1.6.0
# promise is published as source only: build its (pure-Python) wheel here.
"$py" -m pip wheel --no-deps --no-build-isolation -w "$dest" promise==2.3
ls -la "$dest"
