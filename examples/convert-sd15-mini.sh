#!/usr/bin/env bash
# The CLI on the shared SD1.5-mini UNet: convert with its distilled weights, report FLOPs
# at 512 and 768 px, then check both input sizes (32×24 and 16×16) against PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
m=../shared/models/sd15-mini
node bin/deltac.js convert "$m/model.onnx" --weights "$m/delta.safetensors" -o examples/out/sd15-mini.delta.onnx --resolution 512,768 --force
node bin/deltac.js verify "$m/model.onnx" examples/out/sd15-mini.delta.onnx --inputs "$m" --reference "$m/out0.delta.npy,$m/out1.delta.npy"
