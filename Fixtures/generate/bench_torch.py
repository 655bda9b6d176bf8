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


def video_case(path, variant, count, repeats):
    """PyAV twin of eaglet-bench's video case: a demux-only pass for pts and keyframes, then `count`
    uniform frames (exact round-half-even of linspace) as RGB arrays, either by seeking to the keyframe
    before each target and decoding forward (sparse) or by decoding every frame (all)."""
    import bisect

    import av

    def run():
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "NONE"
            pts, keys = [], []
            for packet in container.demux(stream):
                if packet.pts is not None:
                    pts.append(packet.pts)
                    if packet.is_keyframe:
                        keys.append(packet.pts)
            pts.sort(); keys.sort()
            total = len(pts)
            d = count - 1
            idx = [(k * (total - 1)) // d + (1 if 2 * ((k * (total - 1)) % d) > d or (2 * ((k * (total - 1)) % d) == d and ((k * (total - 1)) // d) % 2) else 0)
                   for k in range(count)]
            targets = sorted(set(pts[i] for i in idx))
            out = {}
            if variant == "all":
                container.seek(pts[0], stream=stream, backward=True)
                want = set(targets)
                for frame in container.decode(stream):
                    if frame.pts in want:
                        out[frame.pts] = frame.to_ndarray(format="rgb24")
            else:
                last, frames = None, None
                for t in targets:
                    key = keys[max(0, bisect.bisect_right(keys, t) - 1)] if keys else pts[0]
                    if last is None or key > last:
                        container.seek(key, stream=stream, backward=True)
                        frames = container.decode(stream)
                    for frame in frames:
                        last = frame.pts
                        if frame.pts == t:
                            out[t] = frame.to_ndarray(format="rgb24")
                            break
            assert len(out) == len(targets), (len(out), len(targets))
            return total

    t = median_time(run, repeats, warmup=0)
    return dict(name="video", variant=f"pyav-{variant}", size=f"{count} of {total_frames_of(path)}", threads=1, medianSeconds=t,
                rate=count / t, unit="frames/s", peakRSSBytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def total_frames_of(path):
    import av
    with av.open(path) as c:
        s = c.streams.video[0]
        return sum(1 for p in c.demux(s) if p.pts is not None)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--layers", type=int, default=24)
    p.add_argument("--variant", default="sparse")
    p.add_argument("--path", default="")
    p.add_argument("--tiles", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.case == "matmul":
        n = a.size
        x, y = torch.randn(n, n), torch.randn(n, n)
        t = median_time(lambda: torch.mm(x, y), a.repeats)
        out = dict(name="matmul", variant="torch", size=f"{n}x{n}x{n}", threads=a.threads, medianSeconds=t,
                   rate=2 * n**3 / t / 1e9, unit="GFLOP/s",
                   peakRSSBytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    elif a.case == "eagle":
        # The PyTorch reference on the trained tiny checkpoint's demo question: --size 0 times the first
        # token (tiling + vision + prefill), --size 1 the decode rate (tokens/s after the first).
        import os
        import sys
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from PIL import Image
        from eagle_reference import build_prompt, normalise, tile_image
        from tiny_eagle import CKPT, MAX_TILES, TILE, TOKENS_PER_TILE, load_checkpoint
        model, tok, _ = load_checkpoint(CKPT)
        demo = json.load(open(os.path.join(CKPT, "demo.json")))
        img = Image.open(os.path.join(CKPT, "demo.png")).convert("RGB")

        def run(n_new):
            tiles, _ = tile_image(img, TILE, 1, MAX_TILES)
            ids = tok.encode(build_prompt(demo["question"], [len(tiles) * TOKENS_PER_TILE]), add_special_tokens=False).ids
            t0 = time.perf_counter()
            new, _ = model.greedy(torch.tensor(ids), normalise(tiles), n_new, set())
            return time.perf_counter() - t0, len(new)

        if a.size == 0:
            t = median_time(lambda: run(1), a.repeats)
            rate, kind = 1 / t, "ttft"
        else:
            runs = [(run(32)[0] - run(1)[0]) for _ in range(a.repeats)]
            t = sorted(runs)[len(runs) // 2]
            rate, kind = 31 / t, "decode"
        out = dict(name="eagle", variant="torch", size=kind, threads=a.threads, medianSeconds=t, rate=rate,
                   unit="1/s" if kind == "ttft" else "tokens/s",
                   peakRSSBytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    elif a.case == "tiler":
        out = tiler_case(a.size, a.repeats)
    elif a.case == "video":
        out = video_case(a.path, a.variant, a.size, a.repeats)
    elif a.case == "vision":
        # The So400m-shaped SiglipVisionModel (27 layers) on one tile, random weights, fp32, default
        # attention implementation (sdpa), no_grad: the twin of `eaglet-bench _case vision --variant tower`.
        from transformers import SiglipVisionConfig, SiglipVisionModel
        cfg = SiglipVisionConfig(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                                 image_size=a.size, patch_size=14, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh",
                                 vision_use_head=False)
        model = SiglipVisionModel(cfg).eval()
        # --tiles N: a batch of N tiles in one call (the twin of `--tiles N`), rate over all N.
        pixels = torch.rand(a.tiles, 3, a.size, a.size) * 2 - 1
        t_, c, m = (a.size // 14) ** 2, 1152, 4304
        flops = a.tiles * (2 * t_ * 588 * c + 27 * (8 * t_ * c * c + 4 * t_ * t_ * c + 4 * t_ * c * m))
        with torch.no_grad():
            t = median_time(lambda: model(pixel_values=pixels), a.repeats)
        size = f"{a.size}px-27L" + (f"-{a.tiles}tiles" if a.tiles > 1 else "")
        out = dict(name="vision", variant="torch", size=size, threads=a.threads, medianSeconds=t,
                   rate=flops / t / 1e9, unit="GFLOP/s",
                   peakRSSBytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    elif a.case == "lm":
        for line in bench_lm(a):
            print(json.dumps(line))
        return
    else:
        raise SystemExit(f"unknown case {a.case}")
    print(json.dumps(out))


def seeded_chunked(shape, seed, scale, chunk=1 << 22):
    """fixturelib.seeded without holding n uint64s at once: same SplitMix64 counter, drawn in chunks."""
    import numpy as np
    n = int(np.prod(shape))
    out = np.empty(n, dtype=np.float32)
    with np.errstate(over="ignore"):
        for s in range(0, n, chunk):
            k = np.arange(s + 1, min(n, s + chunk) + 1, dtype=np.uint64)
            z = np.uint64(seed) + k * np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            u = (z >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 8388608.0) - np.float32(1.0)
            out[s:s + len(k)] = u * np.float32(scale)
    return out.reshape(shape)


def bench_lm(a):
    """Twin of eaglet-bench `_case lm --variant eaglet`: Qwen2.5-0.5B shape, the same seeded weights
    (names in the same order, seed 7000 + index, scale 0.05, norms = 1), the same prompt; prefill with
    last-token logits, then greedy decode through a DynamicCache."""
    from transformers import DynamicCache, Qwen2Config, Qwen2ForCausalLM
    cfg = Qwen2Config(hidden_size=896, num_hidden_layers=a.layers, num_attention_heads=14, num_key_value_heads=2,
                      intermediate_size=4864, vocab_size=151936, tie_word_embeddings=True, rms_norm_eps=1e-6,
                      max_position_embeddings=32768, rope_theta=1000000.0)
    cfg._attn_implementation = "sdpa"
    with torch.device("meta"):
        model = Qwen2ForCausalLM(cfg)
    model = model.to_empty(device="cpu").eval()
    names = ["model.embed_tokens.weight"]
    for l in range(a.layers):
        p = f"model.layers.{l}."
        names += [p + s for s in ["self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight",
                                  "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias",
                                  "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                                  "mlp.down_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight"]]
    names.append("model.norm.weight")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for i, n in enumerate(names):
            if n.endswith("norm.weight"):
                params[n].fill_(1.0)
            else:
                params[n].copy_(torch.from_numpy(seeded_chunked(tuple(params[n].shape), 7000 + i, 0.05)))
        model.tie_weights()
        # to_empty left the RoPE buffer uninitialised: recompute inv_freq = 1 / θ^(2k/D).
        rot = model.model.rotary_emb
        inv = 1.0 / (1000000.0 ** (torch.arange(0, 64, 2, dtype=torch.float) / 64))
        rot.inv_freq.copy_(inv)
        if hasattr(rot, "original_inv_freq"):
            rot.original_inv_freq = inv.clone()
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    prompt = torch.tensor([[(i * 7919 + 13) % 151936 for i in range(a.size)]])
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def prefill():
        cache = DynamicCache(config=cfg)
        with torch.no_grad():
            out = model(input_ids=prompt, cache=cache, use_cache=True, logits_to_keep=1)
        return cache, int(out.logits[0, -1].argmax())

    tp = median_time(prefill, 3)
    lines = [dict(name="lm-prefill", variant="torch", size=f"T={a.size},L={a.layers}", threads=a.threads,
                  medianSeconds=tp, rate=a.size / tp, unit="tok/s", peakRSSBytes=rss())]
    cache, nxt = prefill()
    tokens = [nxt]
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(a.steps):
            out = model(input_ids=torch.tensor([[nxt]]), cache=cache, use_cache=True)
            nxt = int(out.logits[0, -1].argmax())
            tokens.append(nxt)
    td = time.perf_counter() - t0
    lines.append(dict(name="lm-decode", variant="torch", size=f"{a.steps} steps,L={a.layers}", threads=a.threads,
                      medianSeconds=td / a.steps, rate=a.steps / td, unit="tok/s", peakRSSBytes=rss()))
    lines.append(dict(tokens=tokens))
    return lines


if __name__ == "__main__":
    main()
