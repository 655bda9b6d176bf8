"""Golden values for training Eagle 2.5 (loss, backward, gradient clipping, AdamW, learning-rate
schedule), computed with PyTorch autograd and torch.optim.AdamW on the tiny-random checkpoint.

Model. EagleReference (eagle_reference.py: SiglipVisionModel -> pixel_shuffle 0.5 -> mlp1 -> splice into
<IMG_CONTEXT> rows -> Qwen2ForCausalLM) built from Fixtures/tiny-random/config.json, fp32, both towers
with attn_implementation "eager" (so the explicit additive mask below is what the attention adds), and
the checkpoint's weights loaded key by key. Checkpoint keys are the released layout that
eagle_tiny_random.py writes: the module name `vision_model.X` is stored as `vision_model.vision_model.X`,
every other name is stored as is; tied word embeddings are stored once, as
`language_model.model.embed_tokens.weight` (lm_head.weight is the same tensor). Tiny sizes: SigLIP hidden
36, 2 layers, tile 28, patch 7 -> 16 patches -> 4 visual tokens per tile; Qwen2 hidden 40, 5 query heads
over 1 KV head, 2 layers, vocab 420; <IMG_CONTEXT> = id 5.

Untied checkpoint. Fixtures/train-tiny-random/untied/ is a copy of tiny-random with
`tie_word_embeddings: false` (top level and text_config) and an extra `language_model.lm_head.weight` =
embed_tokens + fixturelib.seeded((420, 40), SEED + 7, 0.02) (SplitMix64 uniform in [-0.02, 0.02)), so
head and embedding differ. preprocessor_config.json, generation_config.json and tokenizer.json are copied.

A step's batch is given fully resolved (no tokenizer needed):
* input_ids (T,) int64: the S samples of the step packed back to back.
* position_ids (T,) int64: 0, 1, ... restarting at 0 at the first token of each sample (RoPE positions).
* cu_seqlens (S+1,) int64: sample boundaries [0, t1, ..., T]; sample s is tokens cu[s] ..< cu[s+1].
* labels (T,) int64, already shifted: labels[t] is the token that position t must predict (the next token
  of the same sample), -100 where unsupervised. A sample of length n supervised on its last m tokens has
  labels[t] = input_ids[t+1] for t in [n-1-m, n-2] (sample-local t) and -100 elsewhere; the last token of
  a sample is always -100, so no target ever crosses a sample boundary.
* pixel_values (N, 3, 28, 28) fp32: the tiles of all samples in sample order; absent when no sample has
  an image. The k-th position holding id 5 (in packed order) receives the k-th visual token, exactly as
  EagleReference.embed (4 visual tokens per tile, tiles in order).

Forward. Embeddings with the visual tokens spliced in; Qwen2 with position_ids and the explicit additive
mask M (1, 1, T, T) fp32: M[i, j] = 0 when j <= i and tokens i, j are in the same sample
(block-diagonal causal), else torch.finfo(float32).min (-3.4028235e38). Vision tower: every tile alone,
no mask.

Loss. L = (sum over supervised t of CE(logits[t], labels[t])) / n_sup, CE(z, y) = logsumexp(z) - z[y]
(fp32), n_sup = number of labels != -100 in the step (not per sample: long samples weigh more).

Gradients. dL/dparam for every parameter, stored as `<case>.grad.<checkpoint key>` (step 0, before
clipping). For the tied checkpoint the shared embedding/head tensor has ONE gradient (embedding-lookup
part + output-projection part, summed by autograd) under the embed_tokens key. Parameters that are not in
the loss's graph (the vision tower and mlp1 in the image-free `text` case) have no gradient in PyTorch
(grad is None); their stored gradient is zeros, and AdamW SKIPS them entirely: no weight decay, no moment
update, they end the case with their initial values. Such keys are listed per case in the manifest
(`params_without_grad`).

Global gradient norm (before clipping): G = sqrt(sum over parameters with a gradient of ||g||_2^2)
(torch.nn.utils.get_total_norm / the value clip_grad_norm_ returns), computed in fp32.
Clipping with max norm c (torch.nn.utils.clip_grad_norm_(params, c)): g <- g * min(1, c / (G + 1e-6)).

Learning rate of step k = 0 ... K-1 with base eta, warmup W: constant: eta; cosine: k < W -> eta*(k+1)/W,
else eta*0.5*(1 + cos(pi*(k - W)/(K - W))) (Python float64; stored as float64).

AdamW (torch.optim.AdamW, foreach=False, betas (0.9, 0.95), eps 1e-8), two parameter groups: weight
decay 0.1 on every parameter with ndim >= 2 (all matrices, the conv patch embedding, the token embedding
and also SigLIP's position_embedding.weight, which is 2-D), 0 on the others (norm weights, biases).
For step number t = k+1 of a parameter p with (clipped) gradient g, lr = lr_k, wd = its group's decay:
  p <- p * (1 - lr*wd)
  m <- 0.9*m + 0.1*g;   v <- 0.95*v + 0.05*g*g          (m, v start at 0)
  p <- p - (lr / (1 - 0.9^t)) * m / (sqrt(v) / sqrt(1 - 0.95^t) + 1e-8)
Each of the K = 10 steps of a case uses the same batch. Per case the fixture stores losses (K,) fp32 (the
loss before each step's update), grad_norms (K,) fp32 (G before clipping), lrs (K,) float64, the step-0
gradients, and `<case>.after.<checkpoint key>` = every parameter after the K updates.

Cases:
1. text: one 24-token sample, no image, tied checkpoint, supervised on its last 10 tokens; constant lr
   1e-3, no clipping.
2. packed: three samples of 19, 23, 14 tokens packed into T = 56; the middle one holds an image (ids 3,
   then four 5s, then 4, one tile) and the others are text only; supervised on their last 6, 8, 5 tokens;
   tied; cosine schedule W = 3, eta = 2e-3; clipping at c = 0.3125. The checkpoint's 1-D weights (norms)
   are small (drawn with std 0.05), so logits are nearly uniform (loss ~ ln 420 = 6.04) and G stays near
   0.31-0.35; c = 1.0 would never clip, so c = 0.3125 is chosen to clip some steps (0, 1, 5-9) and not
   others (2-4). Asserted: at least one clipped and one unclipped step, and |G - c| >= 1e-3 * c at every
   step, so the branch taken is never decided by rounding (manifest: clipped_steps, clip_margin_rel).
3. untied: the packed batch on the untied checkpoint; constant lr 1e-3, no clipping (lm_head.weight has
   its own gradient and its own AdamW state).
4. images: two samples of 17 and 21 tokens, each with one single-tile image (pixel_values (2, 3, 28, 28)),
   supervised on their last 6 and 7 tokens; tied; constant lr 1e-3, no clipping.
Each case has a batch seed (SEED + 1, + 2, + 2, + 4; untied reuses packed's batch): token ids are
torch.randint(10, 420) with a torch.Generator of that seed (so never 5) apart from the image framing;
pixels are fixturelib.seeded((N, 3, 28, 28), batch seed + 100, 1.0), i.e. uniform in [-1, 1). Torch runs
on one thread so reruns give bit-identical values (the safetensors header order may still differ).

Self-check (asserted, figures in the manifest): for `packed` at step 0, loss * n_sup equals the sum over
the three samples run alone (own causal mask, positions 0..n-1, own tiles) of their summed CE, and every
packed gradient equals (sum of the per-sample summed-CE gradients) / n_sup, to 1e-5 relative: max |diff|
over max |reference| per tensor, except for tensors whose gradient is mathematically zero (SigLIP's
k_proj.bias: softmax ignores a shift shared by a whole score row; its autograd value is ~1e-14 noise),
recognised by max |reference| < 1e-9 * (max |reference| over all tensors) and checked as
max |diff| <= 1e-5 * that global max. This proves the block-diagonal mask and the position restart.

Run: python3 Fixtures/generate/train_reference.py
"""
import json
import math
import os
import shutil

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import Qwen2Config, SiglipVisionConfig

from eagle_reference import EagleReference
from fixturelib import ROOT, seeded, write_fixture

SEED = 2025
K = 10
BETAS, ADAM_EPS, WEIGHT_DECAY = (0.9, 0.95), 1e-8, 0.1
IMG_CONTEXT, IMG_START, IMG_END = 5, 3, 4
TOKENS_PER_TILE, TILE = 4, 28
NAME = "train-tiny-random"
TIED = os.path.join(ROOT, "Fixtures", "tiny-random")
OUTDIR = os.path.join(ROOT, "Fixtures", NAME)
UNTIED = os.path.join(OUTDIR, "untied")
SELF_CHECK_RTOL = 1e-5

torch.manual_seed(SEED)
torch.set_num_threads(1)   # one thread: reductions always split the same way, so reruns are bit-identical


# ---------------------------------------------------------------- checkpoint

def checkpoint_key(module_name: str) -> str:
    """Module parameter name -> the checkpoint's key (released layout, as eagle_tiny_random.py writes)."""
    if module_name.startswith("vision_model.") and not module_name.startswith("vision_model.vision_model."):
        return "vision_model.vision_model." + module_name[len("vision_model."):]
    return module_name


def load_model(folder: str) -> EagleReference:
    cfg = json.load(open(os.path.join(folder, "config.json")))
    vision = SiglipVisionConfig(**cfg["vision_config"])
    text = Qwen2Config(**cfg["text_config"])
    vision._attn_implementation = "eager"
    text._attn_implementation = "eager"
    model = EagleReference(vision, text, downsample_ratio=cfg["downsample_ratio"], select_layer=cfg["select_layer"],
                           image_token_index=cfg["image_token_index"]).float()
    tied = model.language_model.lm_head.weight is model.language_model.model.embed_tokens.weight
    assert tied == bool(cfg["text_config"]["tie_word_embeddings"]), "tying does not follow the config"
    weights = load_file(os.path.join(folder, "model.safetensors"))
    params = dict(model.named_parameters())   # deduplicated: a tied head appears once, as embed_tokens
    keys = {checkpoint_key(n) for n in params}
    assert keys == set(weights), f"key mismatch: {sorted(keys ^ set(weights))}"
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(weights[checkpoint_key(n)])
    assert model.language_model.config._attn_implementation == "eager"
    assert model.vision_model.config._attn_implementation == "eager"
    return model.train()   # no dropout anywhere (attention_dropout 0), so train() changes nothing numerically


def write_untied():
    """Fixtures/train-tiny-random/untied/: tiny-random with its own lm_head = embed_tokens + noise."""
    os.makedirs(UNTIED, exist_ok=True)
    cfg = json.load(open(os.path.join(TIED, "config.json")))
    cfg["tie_word_embeddings"] = False
    cfg["text_config"]["tie_word_embeddings"] = False
    with open(os.path.join(UNTIED, "config.json"), "w") as fh:
        json.dump(cfg, fh, indent=1)
    weights = load_file(os.path.join(TIED, "model.safetensors"))
    emb = weights["language_model.model.embed_tokens.weight"]
    noise = torch.from_numpy(seeded(tuple(emb.shape), SEED + 7, 0.02))
    weights["language_model.lm_head.weight"] = (emb + noise).contiguous()
    save_file(weights, os.path.join(UNTIED, "model.safetensors"), metadata={"format": "pt"})
    for f in ("preprocessor_config.json", "generation_config.json", "tokenizer.json"):
        if os.path.exists(os.path.join(TIED, f)):
            shutil.copy(os.path.join(TIED, f), os.path.join(UNTIED, f))


# ---------------------------------------------------------------- batches

def make_batch(samples, seed):
    """samples: [(length, supervised, image_offset or None)] -> the resolved, packed batch."""
    g = torch.Generator().manual_seed(seed)
    ids, pos, labels, cu, tiles = [], [], [], [0], 0
    for n, m, img in samples:
        s = torch.randint(10, 420, (n,), generator=g)
        if img is not None:
            s[img] = IMG_START
            s[img + 1:img + 1 + TOKENS_PER_TILE] = IMG_CONTEXT
            s[img + 1 + TOKENS_PER_TILE] = IMG_END
            assert img + 1 + TOKENS_PER_TILE < n - 1 - m, "image inside the supervised span"
            tiles += 1
        lab = torch.full((n,), -100, dtype=torch.int64)
        lab[n - 1 - m:n - 1] = s[n - m:n]
        ids.append(s)
        labels.append(lab)
        pos.append(torch.arange(n))
        cu.append(cu[-1] + n)
    batch = {"input_ids": torch.cat(ids).long(), "position_ids": torch.cat(pos).long(),
             "cu_seqlens": torch.tensor(cu, dtype=torch.int64), "labels": torch.cat(labels).long()}
    if tiles:
        batch["pixel_values"] = torch.from_numpy(seeded((tiles, 3, TILE, TILE), seed + 100, 1.0))
    assert int((batch["input_ids"] == IMG_CONTEXT).sum()) == tiles * TOKENS_PER_TILE
    return batch


def block_causal_mask(cu: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    t = int(cu[-1])
    seg = torch.repeat_interleave(torch.arange(len(cu) - 1), cu.diff())
    i = torch.arange(t)
    allowed = (seg[:, None] == seg[None, :]) & (i[None, :] <= i[:, None])
    mask = torch.zeros(t, t, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return mask[None, None]


def summed_ce(model, batch):
    """(sum of CE over supervised positions, number of supervised positions)."""
    emb = model.embed(batch["input_ids"][None], batch.get("pixel_values"))
    out = model.language_model(inputs_embeds=emb, attention_mask=block_causal_mask(batch["cu_seqlens"], emb.dtype),
                               position_ids=batch["position_ids"][None], use_cache=False)
    labels = batch["labels"]
    total = F.cross_entropy(out.logits[0].float(), labels, ignore_index=-100, reduction="sum")
    return total, int((labels != -100).sum())


def split(batch):
    """The samples of a packed batch, each as its own batch (positions restart, own tiles)."""
    cu, out, tile = batch["cu_seqlens"].tolist(), [], 0
    for a, b in zip(cu[:-1], cu[1:]):
        s = {"input_ids": batch["input_ids"][a:b], "position_ids": batch["position_ids"][a:b] - batch["position_ids"][a],
             "cu_seqlens": torch.tensor([0, b - a]), "labels": batch["labels"][a:b]}
        n_tiles = int((s["input_ids"] == IMG_CONTEXT).sum()) // TOKENS_PER_TILE
        if n_tiles:
            s["pixel_values"] = batch["pixel_values"][tile:tile + n_tiles]
            tile += n_tiles
        out.append(s)
    return out


# ---------------------------------------------------------------- training

def lr_at(k: int, hp: dict) -> float:
    eta = hp["lr"]
    if hp["schedule"] == "constant":
        return eta
    w = hp["warmup"]
    if k < w:
        return eta * (k + 1) / w
    return eta * 0.5 * (1.0 + math.cos(math.pi * (k - w) / (K - w)))


def train(model, batch, hp):
    named = [(checkpoint_key(n), p) for n, p in model.named_parameters()]
    params = [p for _, p in named]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": WEIGHT_DECAY},
                             {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                            lr=hp["lr"], betas=BETAS, eps=ADAM_EPS, foreach=False)
    losses, norms, lrs, grads0, no_grad = [], [], [], {}, []
    for k in range(K):
        opt.zero_grad(set_to_none=True)
        total, n = summed_ce(model, batch)
        loss = total / n
        loss.backward()
        if k == 0:
            for key, p in named:
                grads0[key] = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
                if p.grad is None:
                    no_grad.append(key)
        with_grad = [p for p in params if p.grad is not None]
        if hp["clip"] is not None:
            norm = torch.nn.utils.clip_grad_norm_(with_grad, hp["clip"])
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in with_grad])
        lr = lr_at(k, hp)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        losses.append(loss.item())
        norms.append(float(norm))
        lrs.append(lr)
    after = {key: p.detach().clone() for key, p in named}
    return losses, norms, lrs, grads0, after, no_grad


def self_check(batch):
    """Packed step 0 == the samples run alone: summed loss and gradients (see the docstring)."""
    model = load_model(TIED)
    named = [(checkpoint_key(n), p) for n, p in model.named_parameters()]
    total, n = summed_ce(model, batch)
    (total / n).backward()
    packed_loss, packed = total.item(), {k: p.grad.clone() for k, p in named if p.grad is not None}
    model.zero_grad(set_to_none=True)
    parts = 0.0
    for s in split(batch):
        t, _ = summed_ce(model, s)
        t.backward()   # accumulates the per-sample summed-CE gradients
        parts += t.item()
    loss_rel = abs(packed_loss - parts) / abs(parts)
    refs = {k: (p.grad / n if p.grad is not None else torch.zeros_like(p)) for k, p in named}
    scale = max(float(r.abs().max()) for r in refs.values())
    worst_rel, worst_abs, worst_key, zero_keys = 0.0, 0.0, None, []
    for k, ref in refs.items():
        got = packed.get(k, torch.zeros_like(ref))
        d = float((got - ref).abs().max())
        worst_abs = max(worst_abs, d)
        top = float(ref.abs().max())
        if top < 1e-9 * scale:          # mathematically zero gradient: absolute check against the global scale
            zero_keys.append(k)
            assert d <= SELF_CHECK_RTOL * scale, f"{k}: |diff| {d} on a zero gradient"
            continue
        if d / top > worst_rel:
            worst_rel, worst_key = d / top, k
    assert loss_rel < SELF_CHECK_RTOL, f"packed loss {packed_loss} vs per-sample sum {parts}"
    assert worst_rel < SELF_CHECK_RTOL, f"packed gradient of {worst_key}: relative difference {worst_rel}"
    return {"packed_summed_loss": packed_loss, "per_sample_summed_loss": parts, "loss_rel_diff": loss_rel,
            "grad_max_abs_diff": worst_abs, "grad_max_rel_diff": worst_rel, "grad_worst_key": worst_key,
            "grad_global_max": scale, "zero_gradient_keys": zero_keys, "n_supervised": n, "rtol": SELF_CHECK_RTOL}


# ---------------------------------------------------------------- cases

PACKED = [(19, 6, None), (23, 8, 4), (14, 5, None)]
CASES = {
    "text": dict(samples=[(24, 10, None)], checkpoint="tiny-random", schedule="constant", lr=1e-3, warmup=0,
                 clip=None, seed=SEED + 1),
    "packed": dict(samples=PACKED, checkpoint="tiny-random", schedule="cosine", lr=2e-3, warmup=3, clip=0.3125,
                   seed=SEED + 2),
    "untied": dict(samples=PACKED, checkpoint="train-tiny-random/untied", schedule="constant", lr=1e-3, warmup=0,
                   clip=None, seed=SEED + 2),
    "images": dict(samples=[(17, 6, 2), (21, 7, 5)], checkpoint="tiny-random", schedule="constant", lr=1e-3,
                   warmup=0, clip=None, seed=SEED + 4),
}

CONVENTIONS = {
    "batch": "input_ids (T,) int64 packed samples; position_ids (T,) int64 restarting at 0 per sample; cu_seqlens "
             "(S+1,) int64 [0, t1, ..., T]; labels (T,) int64 already shifted: labels[t] = target predicted at "
             "position t (next token of the same sample), -100 = unsupervised, a sample's last token is always -100; "
             "pixel_values (N,3,28,28) fp32 tiles of all samples in order, absent when there is no image; the k-th "
             "id-5 (<IMG_CONTEXT>) position gets the k-th visual token (4 per tile).",
    "attention": "block-diagonal causal: additive fp32 mask (1,1,T,T), 0 where j <= i in the same sample, "
                 "finfo(float32).min elsewhere; RoPE positions = position_ids; eager attention in both towers.",
    "loss": "sum over t with labels[t] != -100 of (logsumexp(logits[t]) - logits[t][labels[t]]), divided by the "
            "number of such t in the whole step.",
    "gradients": "<case>.grad.<checkpoint key> = dLoss/dparam at step 0, before clipping; tied checkpoint: one "
                 "gradient for the shared embedding/head, under language_model.model.embed_tokens.weight; "
                 "parameters outside the graph (params_without_grad) are stored as zeros and skipped by AdamW "
                 "(no decay, no moment update).",
    "grad_norm": "G = sqrt(sum over parameters with a gradient of sum(g^2)), fp32, before clipping.",
    "clipping": "clip_grad_norm_(params, c): g <- g * min(1, c / (G + 1e-6)).",
    "lr_schedule": "step k = 0..K-1, base eta, warmup W: constant -> eta; cosine -> k < W: eta*(k+1)/W, else "
                   "eta*0.5*(1 + cos(pi*(k-W)/(K-W))).",
    "adamw": "torch.optim.AdamW(foreach=False), betas (0.9, 0.95), eps 1e-8; groups: weight_decay 0.1 for ndim >= 2 "
             "(includes token embedding, patch embedding, SigLIP position_embedding.weight), 0 for ndim < 2. "
             "Step t = k+1: p *= 1 - lr*wd; m = 0.9m + 0.1g; v = 0.95v + 0.05g^2; "
             "p -= lr/(1-0.9^t) * m / (sqrt(v)/sqrt(1-0.95^t) + 1e-8).",
    "steps": "K = 10 steps per case, all on the case's same batch; losses[k] and grad_norms[k] are measured before "
             "step k's update with lr lrs[k]; <case>.after.<key> = parameters after all K updates.",
}


def main():
    write_untied()
    tensors, cases_meta = {}, {}
    check = None
    for name, hp in CASES.items():
        batch = make_batch(hp["samples"], hp["seed"])
        if name == "packed":
            check = self_check(batch)
        model = load_model(os.path.join(ROOT, "Fixtures", hp["checkpoint"]))
        losses, norms, lrs, grads, after, no_grad = train(model, batch, hp)
        clipped = [k for k, g in enumerate(norms) if hp["clip"] is not None and g > hp["clip"]]
        if name == "packed":
            assert clipped and len(clipped) < K, f"packed: clipped steps {clipped}, want some but not all"
            margin = min(abs(g - hp["clip"]) / hp["clip"] for g in norms)
            assert margin >= 1e-3, f"packed: a gradient norm is within {margin:.1e} (relative) of the clip"
        for k, v in batch.items():
            tensors[f"{name}.{k}"] = v
        tensors[f"{name}.losses"] = torch.tensor(losses, dtype=torch.float32)
        tensors[f"{name}.grad_norms"] = torch.tensor(norms, dtype=torch.float32)
        tensors[f"{name}.lrs"] = torch.tensor(lrs, dtype=torch.float64)
        for k, v in grads.items():
            tensors[f"{name}.grad.{k}"] = v
        for k, v in after.items():
            tensors[f"{name}.after.{k}"] = v
        cases_meta[name] = {
            "checkpoint": f"Fixtures/{hp['checkpoint']}", "tied": hp["checkpoint"] == "tiny-random",
            "steps": K, "schedule": hp["schedule"], "lr": hp["lr"], "warmup": hp["warmup"], "clip": hp["clip"],
            "betas": list(BETAS), "eps": ADAM_EPS, "weight_decay": WEIGHT_DECAY,
            "sample_lengths": [s[0] for s in hp["samples"]], "supervised_per_sample": [s[1] for s in hp["samples"]],
            "n_supervised": int((batch["labels"] != -100).sum()), "cu_seqlens": batch["cu_seqlens"].tolist(),
            "n_tiles": int(batch["pixel_values"].shape[0]) if "pixel_values" in batch else 0,
            "losses": losses, "grad_norms": norms, "lrs": lrs, "clipped_steps": clipped,
            "params_without_grad": no_grad,
            "clip_margin_rel": (min(abs(g - hp["clip"]) / hp["clip"] for g in norms) if hp["clip"] else None),
            "no_decay_keys": [k for k, v in after.items() if v.ndim < 2],
        }
        print(f"{name}: losses {[round(x, 5) for x in losses]}\n  grad norms {[round(x, 4) for x in norms]}"
              f"  clipped {clipped}  no-grad params {len(no_grad)}")
    print(f"self-check: {check}")
    notes = (f"Training goldens (backward + clip + AdamW + lr schedule) on tiny-random; see the generator's docstring. "
             f"Self-check (packed, step 0, vs samples run alone): loss rel diff {check['loss_rel_diff']:.3e}, "
             f"gradient max abs diff {check['grad_max_abs_diff']:.3e}, max rel diff {check['grad_max_rel_diff']:.3e} "
             f"(bound {SELF_CHECK_RTOL}). packed clipped at steps {cases_meta['packed']['clipped_steps']}.")
    write_fixture(NAME, tensors, generator="Fixtures/generate/train_reference.py", seed=SEED, tolerance="fp32-block",
                  notes=notes, extra={"conventions": CONVENTIONS, "cases": cases_meta, "self_check": check,
                                      "steps": K, "untied_checkpoint": f"Fixtures/{NAME}/untied"})


if __name__ == "__main__":
    main()
