#!/usr/bin/env bash
# Streams per GPU at the SLO, with and without cross-session batching, for tiny.en and base
# (issue 18, part 2). Not run yet: no GPU machine has been lent to this project. On a machine with
# an NVIDIA GPU and CUDA 12 (CTranslate2's PyPI wheels bring their CUDA kernels; cuBLAS and cuDNN
# come from the nvidia-* wheels below), from the repository root:
#
#   make install models && bash bench/gpu/streams.sh [LEVELS]
#
# Each run appends its entry to docs/benchmarks/results.json (device "cuda", batch_window_ms) and
# writes bench/results/gpu-MODEL-batchMS.json; `python -m bench results --write` then puts them in
# the README. The same script prints `python -m bench.batching --device cuda` first: the time per
# utterance of one batched encode+generate at batch sizes 1 to 16, the ceiling batching can reach.
set -euo pipefail
cd "$(dirname "$0")/../.."
levels=${1:-8,16,32,48,64,96,128}
py=.venv/bin/python
$py -m pip install --quiet nvidia-cublas-cu12 nvidia-cudnn-cu12==9.*
nvidia_libs=$($py -c 'import os, nvidia.cublas.lib, nvidia.cudnn.lib as c; print(os.path.dirname(nvidia.cublas.lib.__file__) + ":" + os.path.dirname(c.__file__))')
export LD_LIBRARY_PATH="$nvidia_libs:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv

export ASR_DEVICE=cuda ASR_COMPUTE_TYPE=float16
# Decodes in flight together are what a batch is made of: many decode threads, a few CTranslate2
# replicas (each holds the model on the GPU).
export ASR_LOCAL_WORKERS=${ASR_LOCAL_WORKERS:-32} ASR_DECODE_WORKERS=${ASR_DECODE_WORKERS:-2} ASR_BATCH_MAX=16
$py -m bench.batching --device cuda --compute-type float16 --sizes 1,2,4,8,16

for model in tiny.en base; do
  for window in 0 20; do
    echo "== $model, batch window ${window} ms =="
    ASR_MODEL=$model ASR_BATCH_WINDOW_MS=$window $py -m bench load --levels "$levels" --no-offline \
      --output "bench/results/gpu-$model-batch$window.json" --no-plot
  done
done
