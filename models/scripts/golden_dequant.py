"""Writes models/tests/golden/dequant.json: ggml block dequantization by gguf-py (llama.cpp's own
Python package), the reference for tessera's CPU dequantizers in models/tests/gguf_dequant.rs.

    pip install gguf numpy
    python models/scripts/golden_dequant.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]

Two random blocks per type (scale fields set to finite f16 values), plus the first values and the
sum of three tensors of the real SmolLM2 file.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

# Byte offsets of the f16 scale/min fields inside one block, per type.
SCALE_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.F16: [], T.BF16: [], T.F32: [],
}


def random_blocks(rng, qtype, n_blocks=2):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    if qtype == T.F32:
        return rng.standard_normal(n_blocks * block_size).astype("<f4").view(np.uint8)
    if qtype == T.F16:
        return rng.standard_normal(n_blocks * block_size).astype("<f2").view(np.uint8)
    if qtype == T.BF16:
        f = rng.standard_normal(n_blocks * block_size).astype("<f4")
        return (f.view("<u4") >> 16).astype("<u2").view(np.uint8)
    data = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for block in data:
        for at in SCALE_FIELDS[qtype]:
            block[at : at + 2] = np.array([rng.uniform(-0.05, 0.05)], dtype="<f2").view(np.uint8)
    return data.reshape(-1)


def main():
    rng = np.random.default_rng(1234)
    blocks = []
    for qtype in SCALE_FIELDS:
        raw = random_blocks(rng, qtype)
        values = dequantize(raw, qtype).reshape(-1)
        blocks.append({"type": qtype.name, "bytes": raw.tobytes().hex(), "values": [float(v) for v in values]})

    home = Path(os.environ.get("TESSERA_HOME", Path.home() / ".cache" / "tessera"))
    default = home / "models" / "SmolLM2-135M-Instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    reader = GGUFReader(sys.argv[1] if len(sys.argv) > 1 else default)
    tensors = []
    for name in ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_norm.weight", "blk.29.ffn_down.weight"]:
        t = next(t for t in reader.tensors if t.name == name)
        values = dequantize(t.data, t.tensor_type).reshape(-1).astype(np.float64)
        tensors.append({
            "name": name, "type": t.tensor_type.name, "n_elements": int(values.size),
            "first": [float(v) for v in values[:16]], "sum": float(values.sum()), "abs_sum": float(np.abs(values).sum()),
        })

    out = {"source": "gguf-py gguf.quants.dequantize", "blocks": blocks, "smollm2_tensors": tensors}
    path = Path(__file__).resolve().parent.parent / "tests" / "golden" / "dequant.json"
    path.write_text(json.dumps(out) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
