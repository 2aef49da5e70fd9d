#!/usr/bin/env bash
# Puts cuBLASLt's headers where deltac's tests and the GPU check look for them
# (default ~/.cache/deltac/cublas/include; override with DELTAC_CUBLAS_INCLUDE's parent):
# downloads the nvidia-cublas wheel (~420 MB) with pip from the configured index and
# extracts only nvidia/cu13/include (~0.6 MB). Measured: ~10 s download, <0.1 s extract.
set -euo pipefail
dest="${DELTAC_CUBLAS_DIR:-$HOME/.cache/deltac/cublas}"
if [ -f "$dest/include/cublasLt.h" ]; then
  echo "cuBLASLt headers already in $dest/include"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" nvidia-cublas
wheel="$(ls "$tmp"/nvidia_cublas-*.whl | head -n1)"
python3 - "$wheel" "$dest" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if "/include/" in n and n.endswith(".h")]
    if not names:
        sys.exit(f"{wheel}: no headers inside")
    os.makedirs(os.path.join(dest, "include"), exist_ok=True)
    for n in names:
        with z.open(n) as src, open(os.path.join(dest, "include", os.path.basename(n)), "wb") as out:
            out.write(src.read())
print(f"extracted {len(names)} headers to {dest}/include")
PY
