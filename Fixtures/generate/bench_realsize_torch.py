"""PyTorch's side of `eaglet-bench realsize`: the same released-layout checkpoint (an `eaglet synth` one), loaded
in its stored dtype (bf16) by assigning the memory-mapped safetensors tensors to a model built on the meta
device, then the same prompt as Eaglet's (input ids and pixel_values read from the files the bench wrote):
time to first token (vision tower, mlp1, splice, prefill, first logits) and greedy decode with the KV cache.

Prints one JSON line: {"load_seconds", "ttft_seconds", "decode_tokens_per_second", "peak_rss_bytes", "dtype"}.
Run by the bench; by hand: python3 bench_realsize_torch.py --model DIR --ids ids.json --pixels pv.safetensors
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
from safetensors import safe_open
from transformers import Qwen2Config, SiglipVisionConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eagle_reference import EagleReference  # noqa: E402


def load(model_dir, dtype):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    vc = SiglipVisionConfig(**{k: v for k, v in cfg["vision_config"].items() if k != "torch_dtype"})
    tc = Qwen2Config(**{k: v for k, v in cfg["text_config"].items() if k != "torch_dtype"})
    vc._attn_implementation = tc._attn_implementation = "sdpa"
    with torch.device("meta"):
        m = EagleReference(vc, tc, downsample_ratio=cfg["downsample_ratio"], select_layer=cfg["select_layer"],
                           image_token_index=cfg["image_token_index"])
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) \
        else ["model.safetensors"]
    expected = set(m.state_dict().keys())
    state = {}
    for f in files:
        with safe_open(os.path.join(model_dir, f), framework="pt") as h:
            for k in h.keys():
                t = h.get_tensor(k)
                # The released layout nests the tower once more than some transformers versions do.
                name = k if k in expected else k.replace("vision_model.vision_model.", "vision_model.", 1)
                state[name] = t if t.dtype == dtype else t.to(dtype)
    missing, unexpected = m.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if "rotary_emb" not in k]
    if missing:
        raise SystemExit(f"missing tensors: {missing[:5]}")
    # Buffers that are not in the checkpoint (the rotary inv_freq, position ids) are rebuilt on the CPU.
    rotary = m.language_model.model.rotary_emb
    m.language_model.model.rotary_emb = type(rotary)(config=tc)
    tower = m.vision_model.vision_model if hasattr(m.vision_model, "vision_model") else m.vision_model
    emb = tower.embeddings
    if emb.position_ids.is_meta:
        emb.position_ids = torch.arange(emb.num_positions).expand((1, -1))
    return m.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--pixels", required=True)
    ap.add_argument("--new-tokens", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="bfloat16")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)
    t0 = time.perf_counter()
    m = load(a.model, dtype)
    load_s = time.perf_counter() - t0
    ids = torch.tensor(json.load(open(a.ids)), dtype=torch.int64)
    with safe_open(a.pixels, framework="pt") as h:
        pv = h.get_tensor("pixel_values").to(dtype)
    with torch.no_grad():
        t0 = time.perf_counter()
        emb = m.embed(ids[None], pv)
        out = m.language_model(inputs_embeds=emb, use_cache=True)
        nxt = int(torch.argmax(out.logits[0, -1]))
        ttft = time.perf_counter() - t0
        past = out.past_key_values
        t0 = time.perf_counter()
        for _ in range(a.new_tokens - 1):
            out = m.language_model(input_ids=torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
            past, nxt = out.past_key_values, int(torch.argmax(out.logits[0, -1]))
        dec = time.perf_counter() - t0
    print(json.dumps({
        "load_seconds": load_s, "ttft_seconds": ttft,
        "decode_tokens_per_second": (a.new_tokens - 1) / dec if a.new_tokens > 1 else 0.0,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "dtype": a.dtype,
        "torch": torch.__version__}))


if __name__ == "__main__":
    main()
