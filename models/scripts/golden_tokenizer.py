"""Writes models/tests/golden/smollm2_tokens.json: SmolLM2-135M-Instruct's tokenization, decoding
and chat template rendering by transformers, built from the Q4_1 GGUF (the reference the Rust
tokenizer built from the same GGUF is compared against in models/tests/tokenizer_golden.rs).

    pip install transformers gguf
    python models/scripts/golden_tokenizer.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]

The GGUF tokenizer path of transformers needs no torch, but transformers' GGUF reader module
imports it for dtype names; when torch is absent a stand-in module is registered so that import
succeeds (no tensor is read).
"""

import importlib.machinery
import json
import os
import sys
import types
from pathlib import Path

try:
    import torch  # noqa: F401
except ImportError:

    class _TorchStandIn(types.ModuleType):
        def __getattr__(self, name):
            return type(name, (), {})

    stand_in = _TorchStandIn("torch")
    stand_in.__spec__ = importlib.machinery.ModuleSpec("torch", None)
    sys.modules["torch"] = stand_in

import transformers
from transformers import PreTrainedTokenizerFast

TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "In 2024, 3.14159 * 1,000,000 = 3141590 (approx). Call 555-0123!",
    "Café naïve résumé — Ünïcödé façade, Ångström",
    "你好，世界！日本語のテキスト。한국어 문장",
    "🤗🚀 emoji 👩‍👩‍👧 mix ✓",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "  leading and   multiple    spaces\n\n\ttabs\r\nend ",
    "<|endoftext|><repo_name>tessera<file_sep>main.rs",
    "",
    "I'm sure they'll say it's John's. DON'T WE'VE",
]

CHATS = [
    {"messages": [{"role": "user", "content": "What is the capital of France?"}], "add_generation_prompt": True},
    {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hi in Japanese."},
            {"role": "assistant", "content": "こんにちは"},
            {"role": "user", "content": "  And in French?  "},
        ],
        "add_generation_prompt": False,
    },
]


def main():
    home = Path(os.environ.get("TESSERA_HOME", Path.home() / ".cache" / "tessera"))
    default = home / "models" / "SmolLM2-135M-Instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    tok = PreTrainedTokenizerFast.from_pretrained(str(gguf.parent), gguf_file=gguf.name)

    encodings = []
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        encodings.append(
            {
                "text": text,
                "ids": ids,
                "decoded": tok.decode(ids),
                "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
            }
        )
    chats = []
    for chat in CHATS:
        rendered = tok.apply_chat_template(chat["messages"], tokenize=False, add_generation_prompt=chat["add_generation_prompt"])
        chats.append({**chat, "rendered": rendered, "ids": tok(rendered)["input_ids"]})

    out = {
        "source": f"transformers {transformers.__version__} PreTrainedTokenizerFast.from_pretrained(gguf_file={gguf.name!r})",
        "bos_token": tok.bos_token,
        "eos_token": tok.eos_token,
        "encodings": encodings,
        "chats": chats,
    }
    path = Path(__file__).resolve().parent.parent / "tests" / "golden" / "smollm2_tokens.json"
    # One entry per line: diffs of a regenerated file stay readable.
    lines = [json.dumps({k: v for k, v in out.items() if k not in ("encodings", "chats")}, ensure_ascii=False)[:-1] + ","]
    for key in ("encodings", "chats"):
        entries = ",\n  ".join(json.dumps(e, ensure_ascii=False) for e in out[key])
        lines.append(f' "{key}": [\n  {entries}\n ],')
    lines[-1] = lines[-1][:-1]
    path.write_text("\n".join(lines) + "\n}\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
