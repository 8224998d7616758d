#!/usr/bin/env python3
"""cuBLAS through PyTorch on the same GPU as `tessera bench`, for benches/RESULTS.md.

Times what tessera's kernel rows time, with the same units: square GEMM in GFLOP/s (f32 with
TF32 off, as tessera's f32 matmul; TF32 and f16 for context), GEMV x[1, K] @ W[N, K]^T in GB/s of
weights read (f16 and f32), and a device copy in read + write GB/s. Each figure is the median of
`--reps` timings by CUDA events of 10 back-to-back calls, after warm-up runs. Run by hand on the
device machine:

    python3 benches/torch_reference.py --json
"""

import argparse
import json
import statistics

import torch

GEMV_SHAPES = [(576, 1536), (2048, 8192), (4096, 14336)]


def median_ms(fn, reps, inner=10, warmup=3):
    """Median over `reps` timings of the mean milliseconds per call of `inner` back-to-back calls
    of `fn` between two CUDA events (so the GPU does not wait on Python's launches)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / inner)
    return statistics.median(times)


def gemm(n, dtype, tf32, reps):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    ms = median_ms(lambda: torch.mm(a, b), reps)
    name = {torch.float32: "tf32" if tf32 else "f32", torch.float16: "f16"}[dtype]
    return {"n": n, "dtype": name, "ms": ms, "gflop_s": 2 * n**3 / ms / 1e6}


def gemv(k, n, dtype, reps):
    """Weights read once per call; several matrices in turn so that L2 (60 MB) does not hold them."""
    copies = max(1, (256 << 20) // (k * n * dtype.itemsize))
    ws = [torch.randn(n, k, device="cuda", dtype=dtype) for _ in range(copies)]
    x = torch.randn(1, k, device="cuda", dtype=dtype)
    turn = [0]

    def step():
        turn[0] = (turn[0] + 1) % copies
        torch.matmul(x, ws[turn[0]].t())

    ms = median_ms(step, reps)
    gb_s = k * n * dtype.itemsize / ms / 1e6
    return {"k": k, "n": n, "dtype": str(dtype).removeprefix("torch."), "us": ms * 1e3, "gb_s": gb_s}


def copy_bandwidth(reps):
    src = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), reps)
    return 2 * src.numel() / ms / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gemm", default="1024,2048,4096")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.gemm.split(",")]
    out = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cublas": torch.backends.cuda.preferred_blas_library().name,
        "copy_gb_s": copy_bandwidth(args.reps),
        "gemm": [gemm(n, d, tf32, args.reps) for n in sizes
                 for d, tf32 in [(torch.float32, False), (torch.float32, True), (torch.float16, False)]],
        "gemv": [gemv(k, n, d, args.reps) for d in [torch.float16, torch.float32] for k, n in GEMV_SHAPES],
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{out['device']} (torch {out['torch']}): copy {out['copy_gb_s']:.0f} GB/s read + write")
    for g in out["gemm"]:
        print(f"gemm {g['dtype']:>4} {g['n']}^3: {g['gflop_s']:9.0f} GFLOP/s ({g['ms']:.3f} ms)")
    for g in out["gemv"]:
        print(f"gemv {g['dtype']:>7} {g['k']}x{g['n']}: {g['gb_s']:7.0f} GB/s ({g['us']:.1f} us)")


if __name__ == "__main__":
    main()
