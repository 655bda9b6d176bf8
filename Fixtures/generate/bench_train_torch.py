"""PyTorch's side of `eaglet-bench train`: the same checkpoint (fp32) and the same steps — the batches Eaglet packed,
read from the file the bench wrote — trained the way PyTorch users train (and the way tiny_eagle.py trained the
checkpoint): each step's samples as one right-padded batch with a padding mask (SDPA attention), loss = summed
cross-entropy over the supervised positions ÷ their count, backward, AdamW (decay on matrices), the same lr.

Prints one JSON line: {"median_step_seconds", "steps", "threads", "torch"}.
Run by the bench; by hand: python3 bench_train_torch.py --model DIR --batches F.safetensors --steps K
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eagle_reference import EagleReference  # noqa: E402
from transformers import Qwen2Config, SiglipVisionConfig  # noqa: E402


def load(folder):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    vc = SiglipVisionConfig(**{k: v for k, v in cfg["vision_config"].items() if k != "torch_dtype"})
    tc = Qwen2Config(**{k: v for k, v in cfg["text_config"].items() if k != "torch_dtype"})
    vc._attn_implementation = tc._attn_implementation = "sdpa"
    m = EagleReference(vc, tc, downsample_ratio=cfg["downsample_ratio"], select_layer=cfg["select_layer"],
                       image_token_index=cfg["image_token_index"]).float()
    w = load_file(os.path.join(folder, "model.safetensors"))
    with torch.no_grad():
        for n, p in m.named_parameters():
            key = n if n in w else "vision_model.vision_model." + n[len("vision_model."):]
            p.copy_(w[key].float())
    return m.train(), cfg["image_token_index"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batches", required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model, iti = load(a.model)
    data = load_file(a.batches)
    params = list(model.parameters())
    opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.01},
                             {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.98), eps=1e-8)
    times = []
    for k in range(a.steps):
        ids, labels, cu = data[f"{k}.ids"], data[f"{k}.labels"], data[f"{k}.cu_seqlens"].tolist()
        pv = data.get(f"{k}.pixel_values")
        t0 = time.perf_counter()
        lens = [b - s for s, b in zip(cu[:-1], cu[1:])]
        T = max(lens)
        B = len(lens)
        batch_ids = torch.zeros((B, T), dtype=torch.long)
        batch_labels = torch.full((B, T), -100, dtype=torch.long)
        att = torch.zeros((B, T), dtype=torch.long)
        for i, (s, e) in enumerate(zip(cu[:-1], cu[1:])):
            batch_ids[i, :e - s] = ids[s:e]
            batch_labels[i, :e - s] = labels[s:e]
            att[i, :e - s] = 1
        opt.zero_grad(set_to_none=True)
        emb = model.language_model.get_input_embeddings()(batch_ids)
        if pv is not None and pv.shape[0] > 0:
            vis = model.visual_tokens(pv).to(emb.dtype)
            mask = batch_ids == iti
            emb = emb.clone()
            emb[mask] = vis
        out = model.language_model(inputs_embeds=emb, attention_mask=att, use_cache=False)
        n = int((batch_labels != -100).sum())
        loss = F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]).float(), batch_labels.reshape(-1),
                               ignore_index=-100, reduction="sum") / n
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"median_step_seconds": statistics.median(times[1:] if len(times) > 1 else times),
                      "steps": a.steps, "threads": a.threads, "torch": torch.__version__,
                      "last_loss": float(loss)}))


if __name__ == "__main__":
    main()
