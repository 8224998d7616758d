#!/usr/bin/env python3
"""Golden outputs for the SmolLM2-135M-Instruct model tests, made once by hand with transformers.

transformers dequantizes the Q4_1 GGUF to float32 and runs its own Llama implementation; we record
prompt token ids, the first greedy tokens and the top-5 log-probabilities of the first generated
token. Run: python scripts/golden/smollm2.py  (needs torch, transformers, gguf, accelerate).
Writes tests/golden/smollm2.json.
"""
import json
import os
import pathlib

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

HOME = pathlib.Path(os.environ.get("TESSERA_HOME", pathlib.Path.home() / ".cache" / "tessera"))
DIR = HOME / "models" / "SmolLM2-135M-Instruct"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
NEW_TOKENS = 16

PROMPTS = [
    {"name": "raw", "prompt": "The capital of France is", "chat": False},
    {"name": "non_ascii", "prompt": "Voilà une phrase en français avec des accents: été, ça, naïve. Ensuite", "chat": False},
    {"name": "chat", "prompt": "What is 2 + 3? Answer with one number.", "chat": True},
]


def main():
    tok = AutoTokenizer.from_pretrained(DIR, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(DIR, gguf_file=GGUF, dtype=torch.float32)
    model.eval()
    cases = []
    for p in PROMPTS:
        if p["chat"]:
            text = tok.apply_chat_template([{"role": "user", "content": p["prompt"]}], tokenize=False, add_generation_prompt=True)
        else:
            text = p["prompt"]
        ids = tok(text, add_special_tokens=False).input_ids
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = model(x).logits[0, -1].double()
            logprobs = torch.log_softmax(logits, dim=-1)
            top = torch.topk(logprobs, 5)
            out = model.generate(x, max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None)
        generated = out[0, len(ids):].tolist()
        cases.append({
            "name": p["name"],
            "prompt": p["prompt"],
            "chat": p["chat"],
            "rendered": text,
            "prompt_ids": ids,
            "generated_ids": generated,
            "generated_text": tok.decode(generated),
            "top5_first": [[int(i), float(v)] for v, i in zip(top.values, top.indices)],
        })
        print(p["name"], ids[:8], generated, repr(tok.decode(generated)))
    out = pathlib.Path(__file__).resolve().parents[2] / "tests" / "golden" / "smollm2.json"
    out.write_text(json.dumps({"model": GGUF, "transformers": __import__("transformers").__version__, "cases": cases}, indent=1) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
