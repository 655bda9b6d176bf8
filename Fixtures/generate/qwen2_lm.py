"""Golden values for chapters 07 and 08 (modules QwenAttention, Qwen2): transformers'
Qwen2ForCausalLM in fp32 with two tiny odd configurations, plus the attention pieces on their own.

  a: hidden 64, 8 heads over 2 KV heads (head_dim 8), intermediate 45, vocab 211, 3 layers, untied
     lm_head, theta 10000; weights stored under the Eagle 2.5 keys `language_model.model.*` and
     `language_model.lm_head.weight` (Fixtures/qwen2-lm/a.safetensors, a.config.json).
  b: hidden 40, 5 heads over 1 KV head, intermediate 37, vocab 173, 2 layers, tied embeddings,
     theta 1e6; stored with plain `model.*` keys and no lm_head (as transformers saves a tied model).

For each: the output of every decoder layer, the final norm and the logits for three prompts; and for
one prompt the logits of a prefix followed by three single-token steps through transformers' KV cache.
Attention pieces: RoPE cos/sin (positions up to 40000), apply_rotary_pos_emb, and GQA causal attention
with its log-sum-exp, with and without a query offset (queries are the last rows of the keys).

Run: python3 Fixtures/generate/qwen2_lm.py   (writes Fixtures/qwen2-lm/)
"""
import json
import os

import torch
from safetensors.torch import save_file
from transformers import DynamicCache, Qwen2Config, Qwen2ForCausalLM
from transformers.models.qwen2 import modeling_qwen2 as mq

from fixturelib import ROOT, write_fixture

SEED = 5
torch.manual_seed(SEED)
NAME = "qwen2-lm"
folder = os.path.join(ROOT, "Fixtures", NAME)
os.makedirs(folder, exist_ok=True)

CONFIGS = {
    "a": dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2,
              intermediate_size=45, vocab_size=211, rope_theta=10000.0, tie_word_embeddings=False,
              rms_norm_eps=1e-6, max_position_embeddings=4096),
    "b": dict(hidden_size=40, num_hidden_layers=2, num_attention_heads=5, num_key_value_heads=1,
              intermediate_size=37, vocab_size=173, rope_theta=1000000.0, tie_word_embeddings=True,
              rms_norm_eps=1e-5, max_position_embeddings=2048),
}
PROMPTS = {"a": [[3, 17, 200, 5, 42, 42, 7], [1], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 210, 100, 150]],
           "b": [[4, 100, 172, 9, 0], [55, 56], [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144]]}
t = {}
for name, kw in CONFIGS.items():
    cfg = Qwen2Config(**kw)
    model = Qwen2ForCausalLM(cfg).eval()
    # Larger-than-default random weights so every layer changes the residual stream visibly; norms
    # get non-unit weights so a missing multiply cannot pass.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("layernorm.weight") or pname.endswith("norm.weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif pname.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    sd = model.state_dict()
    if name == "a":
        stored = {("language_model." + k): v.contiguous() for k, v in sd.items()}
    else:
        stored = {k: v.contiguous() for k, v in sd.items() if k != "lm_head.weight"}
    save_file(stored, os.path.join(folder, f"{name}.safetensors"))
    with open(os.path.join(folder, f"{name}.config.json"), "w") as fh:
        json.dump(cfg.to_dict(), fh, indent=1, sort_keys=True)
        fh.write("\n")

    captured = []
    hooks = [layer.register_forward_hook(lambda m, i, o: captured.append(o[0] if isinstance(o, tuple) else o))
             for layer in model.model.layers]
    hooks.append(model.model.norm.register_forward_hook(lambda m, i, o: captured.append(o)))
    with torch.no_grad():
        for pi, prompt in enumerate(PROMPTS[name]):
            captured.clear()
            ids = torch.tensor([prompt])
            out = model(input_ids=ids, use_cache=False)
            t[f"{name}.p{pi}.input_ids"] = ids[0].to(torch.int64)
            for li in range(cfg.num_hidden_layers):
                t[f"{name}.p{pi}.layer{li}"] = captured[li][0]
            t[f"{name}.p{pi}.norm"] = captured[-1][0]
            t[f"{name}.p{pi}.logits"] = out.logits[0]
        for h in hooks:
            h.remove()
        # prefix + three cached single-token steps
        prompt = PROMPTS[name][2]
        prefix, steps = prompt[:-3], prompt[-3:]
        cache = DynamicCache(config=cfg)
        out = model(input_ids=torch.tensor([prefix]), cache=cache, use_cache=True)
        t[f"{name}.cached.prefix_logits"] = out.logits[0]
        for si, tok in enumerate(steps):
            out = model(input_ids=torch.tensor([[tok]]), cache=cache, use_cache=True,
                        position_ids=torch.tensor([[len(prefix) + si]]))
            t[f"{name}.cached.step{si}_logits"] = out.logits[0]

# RoPE on its own: cos/sin for head_dim 8 at far-apart positions, and q/k after rotation.
cfg = Qwen2Config(**CONFIGS["a"])
rope = mq.Qwen2RotaryEmbedding(cfg)
pos = torch.tensor([[0, 1, 2, 7, 100, 1234, 40000]])
x = torch.randn(1, 8, 7, 8)
cos, sin = rope(x, pos)
t["rope.positions"] = pos[0]
t["rope.cos"], t["rope.sin"] = cos[0], sin[0]
qk = torch.randn(1, 3, 7, 8)  # (B, H, T, D)
t["rope.x"] = qk[0]
t["rope.out"], _ = mq.apply_rotary_pos_emb(qk, qk, cos, sin)
t["rope.out"] = t["rope.out"][0]


# GQA causal attention with LSE, written from the definition (scores, mask, softmax) in float64 and
# cross-checked against torch's scaled_dot_product_attention with enable_gqa.
def reference_attention(q, k, v, q_offset):
    H, T, D = q.shape
    Hkv, S, _ = k.shape
    rep = H // Hkv
    kk = k.repeat_interleave(rep, dim=0).double()
    vv = v.repeat_interleave(rep, dim=0).double()
    s = q.double() @ kk.transpose(1, 2) / D ** 0.5
    qpos = torch.arange(T)[:, None] + q_offset
    kpos = torch.arange(S)[None, :]
    s = s.masked_fill(kpos > qpos, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    out = torch.softmax(s, dim=-1) @ vv
    return out.float(), lse.float()


H, Hkv, S, D = 6, 2, 45, 8
q, k, v = torch.randn(H, S, D), torch.randn(Hkv, S, D), torch.randn(Hkv, S, D)
out, lse = reference_attention(q, k, v, 0)
sdpa = torch.nn.functional.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True, enable_gqa=True)[0]
assert torch.allclose(out, sdpa, atol=1e-5), "float64 reference disagrees with SDPA"
t["attn.q"], t["attn.k"], t["attn.v"], t["attn.out"], t["attn.lse"] = q, k, v, out, lse
# queries = the last 11 positions (as after a cached prefix of 34)
qo = q[:, S - 11:]
out2, lse2 = reference_attention(qo, k, v, S - 11)
t["attn_offset.q"], t["attn_offset.out"], t["attn_offset.lse"] = qo, out2, lse2

write_fixture(NAME, t, generator="Fixtures/generate/qwen2_lm.py", seed=SEED, tolerance="fp32-block",
              notes="a.safetensors/b.safetensors are the checkpoints (a: language_model.* keys, untied; "
                    "b: model.* keys, tied, no lm_head); a.config.json/b.config.json are Qwen2Config.to_dict() "
                    "of transformers 5.x. attn.* is float64 math cast to fp32.")
