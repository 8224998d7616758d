#!/usr/bin/env python3
"""Golden outputs for the all-MiniLM-L6-v2 embedding tests, made once by hand with
sentence-transformers (token ids and normalized mean-pooled embeddings).
Run: python scripts/golden/minilm.py  (needs sentence-transformers). Writes tests/golden/minilm.json.
"""
import json
import os
import pathlib

from sentence_transformers import SentenceTransformer

HOME = pathlib.Path(os.environ.get("TESSERA_HOME", pathlib.Path.home() / ".cache" / "tessera"))
DIR = HOME / "models" / "all-MiniLM-L6-v2"

SENTENCES = [
    "A man is eating food.",
    "",
    "Les élèves étudient à la bibliothèque; 学生在图书馆学习。 🙂",
    "The quick brown fox jumps over the lazy dog.",
    " ".join(["A very long sentence that keeps going to exceed the truncation length of the model."] * 30),
    "GPUs make matrix multiplication fast.",
]


def main():
    model = SentenceTransformer(str(DIR), device="cpu")
    tok = model.tokenizer
    emb = model.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=False)
    ids = [tok(s, truncation=True, max_length=model.max_seq_length)["input_ids"] for s in SENTENCES]
    out = pathlib.Path(__file__).resolve().parents[2] / "tests" / "golden" / "minilm.json"
    out.write_text(json.dumps({
        "model": "all-MiniLM-L6-v2",
        "max_seq_length": model.max_seq_length,
        "sentences": SENTENCES,
        "token_ids": ids,
        "embeddings": [[round(float(x), 7) for x in e] for e in emb],
    }) + "\n")
    print("wrote", out, [len(i) for i in ids], emb.shape)


if __name__ == "__main__":
    main()
