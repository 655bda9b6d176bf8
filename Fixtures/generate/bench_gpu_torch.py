"""PyTorch eager twins of `eaglet-gpu bench` (Sources/EagletGPU/GPUBench.swift), on the same card.

vision:  transformers SiglipVisionModel with the So400m shape (27 layers, width 1152, 16 heads, MLP 4304,
         patch 14, 448 px) on one tile.
decoder: one Qwen2.5-7B-shaped decoder layer (width 3584, 28 heads over 4 kv heads, MLP 18944), run as a
         1-layer Qwen2Model on inputs_embeds of T tokens (default 4096; causal; embedding/final norm are negligible).
attention: scaled_dot_product_attention alone, causal, 28 query heads over 4 kv heads of 128 (enable_gqa), T tokens.
fp32 keeps TF32 off (PyTorch's default for matmuls); bf16 converts the module to bfloat16. Timing: one
warm-up, then the median of `repeats` runs, each ended by torch.cuda.synchronize(). Prints one JSON line.

Run: python3 Fixtures/generate/bench_gpu_torch.py decoder bf16 5 [T]
"""
import json
import sys
import time

import torch


def median_time(fn, repeats):
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    name, precision, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tokens = int(sys.argv[4]) if len(sys.argv) > 4 else 4096
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    dev = "cuda"
    torch.manual_seed(0)
    with torch.no_grad():
        if name == "vision":
            from transformers import SiglipVisionConfig, SiglipVisionModel
            cfg = SiglipVisionConfig(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                                     num_attention_heads=16, image_size=448, patch_size=14)
            model = SiglipVisionModel(cfg).to(dev, dtype).eval()
            x = torch.randn(1, 3, 448, 448, device=dev, dtype=dtype)
            seconds = median_time(lambda: model(pixel_values=x), repeats)
        elif name == "decoder":
            from transformers import Qwen2Config, Qwen2Model
            cfg = Qwen2Config(hidden_size=3584, intermediate_size=18944, num_hidden_layers=1, num_attention_heads=28,
                              num_key_value_heads=4, vocab_size=128, max_position_embeddings=max(32768, tokens))
            model = Qwen2Model(cfg).to(dev, dtype).eval()
            x = torch.randn(1, tokens, 3584, device=dev, dtype=dtype)
            seconds = median_time(lambda: model(inputs_embeds=x, use_cache=False), repeats)
        elif name == "attention":
            import torch.nn.functional as F
            q = torch.randn(1, 28, tokens, 128, device=dev, dtype=dtype)
            k = torch.randn(1, 4, tokens, 128, device=dev, dtype=dtype)
            v = torch.randn(1, 4, tokens, 128, device=dev, dtype=dtype)
            model = None
            seconds = median_time(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
                                  repeats)
        else:
            raise SystemExit("unknown case " + name)
    print(json.dumps({"case": name, "precision": precision, "seconds": seconds, "torch": torch.__version__,
                      "device": torch.cuda.get_device_name(0),
                      "tokens": tokens,
                      "attn_implementation": getattr(getattr(model, "config", None), "_attn_implementation", "sdpa")}))


if __name__ == "__main__":
    main()
