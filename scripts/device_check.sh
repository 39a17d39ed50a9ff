#!/usr/bin/env bash
# The GPU paths hubkit cannot test on CPUs, in one run of under 8 minutes on a machine with one GPU:
#   1. a tiny FSDP run over NCCL (every GPU, one process each; one GPU: FSDP in one process) against the same
#      run without sharding: the loss curves must agree;
#   2. `--backend vllm` with two LoRA adapters of one base against `--backend hf` on the same items: the same
#      multiple-choice answers, log-likelihoods within bf16/fp32 noise, greedy generations, and each adapter
#      shown to change vLLM's outputs (not silently scoring the base);
#   3. the throughput rows of this GPU, in the units of hubkit/sweep/throughput.yaml.
# Needs nothing from the network: a tiny model and synthetic data are built here. Parts whose extras are missing
# (vLLM, flash-attn) say so and are skipped. On a machine without a GPU it says so and exits 0: it is never part
# of the CPU test suite's pass/fail.
#
#   bash scripts/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
if ! python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "device check: no GPU here (torch sees no CUDA device); nothing to check."
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export HF_HOME="$work/hf" HUBKIT_HOME="$work/hubkit" HF_HUB_DISABLE_TELEMETRY=1 TRANSFORMERS_VERBOSITY=error
export HUBKIT_EVAL_CACHE="$work/eval-cache" TOKENIZERS_PARALLELISM=false
exec timeout 470 python scripts/device_check.py "$work"
