"""PyTorch twins of eaglet-bench cases, run by eaglet-bench in the same run as Eaglet's own cases.
Prints one JSON line in eaglet-bench's BenchResult format.

Run: python3 Fixtures/generate/bench_torch.py matmul --size 1024 --threads 2 --repeats 5
"""
import argparse
import json
import resource
import time

import torch


def median_time(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def tiler_case(width, repeats):
    """PIL + numpy twin of eaglet-bench's tiler case: IAP grid (tiler_grids.iap_grid), bicubic resize,
    row-major crops, thumbnail, x/255 then (x-0.5)/0.5 -> (N, 3, 448, 448) float32."""
    import numpy as np
    from PIL import Image
    from tiler_grids import iap_grid

    height = width * 9 // 16
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x ^ y) & 255], -1).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")

    def run():
        c, r = iap_grid(width, height, 448, 1, 12)
        big = img.resize((c * 448, r * 448), Image.BICUBIC)
        tiles = [big.crop((k % c * 448, k // c * 448, k % c * 448 + 448, k // c * 448 + 448)) for k in range(c * r)]
        if c * r > 1:
            tiles.append(img.resize((448, 448), Image.BICUBIC))
        a = (np.stack([np.asarray(t) for t in tiles]).astype(np.float32) * np.float32(1 / 255) - 0.5) / 0.5
        return np.ascontiguousarray(a.transpose(0, 3, 1, 2))

    n = run().shape[0]
    t = median_time(run, repeats)
    return dict(name="tiler", variant="pil", size=f"{width}x{height}", threads=1, medianSeconds=t, rate=n / t,
                unit="tiles/s", peakRSSBytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.case == "matmul":
        n = a.size
        x, y = torch.randn(n, n), torch.randn(n, n)
        t = median_time(lambda: torch.mm(x, y), a.repeats)
        out = dict(name="matmul", variant="torch", size=f"{n}x{n}x{n}", threads=a.threads, medianSeconds=t,
                   rate=2 * n**3 / t / 1e9, unit="GFLOP/s",
                   peakRSSBytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    elif a.case == "tiler":
        out = tiler_case(a.size, a.repeats)
    elif a.case == "vision":
        # The So400m-shaped SiglipVisionModel (27 layers) on one tile, random weights, fp32, default
        # attention implementation (sdpa), no_grad: the twin of `eaglet-bench _case vision --variant tower`.
        from transformers import SiglipVisionConfig, SiglipVisionModel
        cfg = SiglipVisionConfig(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                                 image_size=a.size, patch_size=14, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh",
                                 vision_use_head=False)
        model = SiglipVisionModel(cfg).eval()
        pixels = torch.rand(1, 3, a.size, a.size) * 2 - 1
        t_, c, m = (a.size // 14) ** 2, 1152, 4304
        flops = 2 * t_ * 588 * c + 27 * (8 * t_ * c * c + 4 * t_ * t_ * c + 4 * t_ * c * m)
        with torch.no_grad():
            t = median_time(lambda: model(pixel_values=pixels), a.repeats)
        out = dict(name="vision", variant="torch", size=f"{a.size}px-27L", threads=a.threads, medianSeconds=t,
                   rate=flops / t / 1e9, unit="GFLOP/s",
                   peakRSSBytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    else:
        raise SystemExit(f"unknown case {a.case}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
