"""Golden values for chapter 12 (module FusedKernels): PyTorch fp32 autograd forward AND backward of every
operator the kernel lab fuses, on odd shapes so transposed or mis-strided indexing cannot pass by accident.

  rmsnorm   y = x / sqrt(mean(x²) + eps) · w               grads dx, dw            (T, C) = (7, 37)
  swiglu    a = silu(gate) · up                            grads dgate, dup        (T, I) = (5, 23)
  mlp       y = down(silu(x Wgᵀ) · (x Wuᵀ))                grads dx, dWg, dWu, dWd (T, C, I) = (5, 13, 19)
  rope      transformers' qwen2 apply_rotary_pos_emb on q (H=3) and k (Hkv=1), D = 8, T = 6
  lce       hidden (11, 13) · lm_head (29, 13)ᵀ → cross-entropy with ignore_index −100, mean over valid
            labels; and the weighted form Σ w_t · ce_t (Eagle's loss_weight, reduction 'sum')
  attn      causal GQA attention H = 4, Hkv = 2, T = 9, D = 8 (scale D^-1/2), out, lse, dq, dk, dv;
            and 5 query rows at positions 4…8 against the same 9 keys (query offset 4)

Run: cd Fixtures/generate && python3 fused_kernels.py   (writes Fixtures/fused-kernels/)
"""
import torch
import torch.nn.functional as F
from transformers.models.qwen2 import modeling_qwen2 as mq

from fixturelib import write_fixture

SEED = 20261209
g = torch.Generator().manual_seed(SEED)


def randn(*shape, scale=1.0):
    return (torch.randn(*shape, generator=g, dtype=torch.float32) * scale).requires_grad_(True)


t = {}

# RMSNorm (fp32 statistics, as Liger's casting_mode "llama" in fp32)
x, w = randn(7, 37, scale=3.0), randn(37)
dy = torch.randn(7, 37, generator=g)
y = F.rms_norm(x, (37,), w, eps=1e-6)
y.backward(dy)
t.update({"rmsnorm.x": x, "rmsnorm.weight": w, "rmsnorm.dy": dy, "rmsnorm.y": y,
          "rmsnorm.dx": x.grad, "rmsnorm.dweight": w.grad})

# SwiGLU activation
gate, up = randn(5, 23, scale=2.0), randn(5, 23)
dy = torch.randn(5, 23, generator=g)
a = F.silu(gate) * up
a.backward(dy)
t.update({"swiglu.gate": gate, "swiglu.up": up, "swiglu.dy": dy, "swiglu.out": a,
          "swiglu.dgate": gate.grad, "swiglu.dup": up.grad})

# The whole MLP (Qwen2MLP without bias)
x = randn(5, 13)
wg, wu, wd = randn(19, 13, scale=0.3), randn(19, 13, scale=0.3), randn(13, 19, scale=0.3)
dy = torch.randn(5, 13, generator=g)
y = F.linear(F.silu(F.linear(x, wg)) * F.linear(x, wu), wd)
y.backward(dy)
t.update({"mlp.x": x, "mlp.gate_proj": wg, "mlp.up_proj": wu, "mlp.down_proj": wd, "mlp.dy": dy, "mlp.y": y,
          "mlp.dx": x.grad, "mlp.dgate_proj": wg.grad, "mlp.dup_proj": wu.grad, "mlp.ddown_proj": wd.grad})

# RoPE: fp32 angles as transformers' Qwen2RotaryEmbedding, applied by apply_rotary_pos_emb.
T, H, HKV, D = 6, 3, 1, 8
positions = torch.tensor([0, 1, 2, 5, 17, 300], dtype=torch.int64)
inv_freq = 1.0 / (10000.0 ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
ang = positions.float()[:, None] * inv_freq[None, :]
emb = torch.cat([ang, ang], dim=-1)
cos, sin = emb.cos(), emb.sin()
q, k = randn(1, H, T, D), randn(1, HKV, T, D)
dq_out, dk_out = torch.randn(1, H, T, D, generator=g), torch.randn(1, HKV, T, D, generator=g)
qo, ko = mq.apply_rotary_pos_emb(q, k, cos[None], sin[None])
(qo * dq_out).sum().add_((ko * dk_out).sum()).backward()
# stored token-major (T, heads·D), the layout the in-place kernel works on
tm = lambda z: z.detach()[0].permute(1, 0, 2).reshape(T, -1).contiguous()
t.update({"rope.positions": positions, "rope.q": tm(q), "rope.k": tm(k), "rope.q_out": tm(qo), "rope.k_out": tm(ko),
          "rope.dq_out": tm(dq_out), "rope.dk_out": tm(dk_out), "rope.dq": tm(q.grad), "rope.dk": tm(k.grad)})

# linear + cross-entropy
T, C, V = 11, 13, 29
hidden, lm_head = randn(T, C), randn(V, C, scale=0.5)
labels = torch.randint(0, V, (T,), generator=g)
labels[[0, 4, 5]] = -100
loss = F.cross_entropy(F.linear(hidden, lm_head), labels, ignore_index=-100)
loss.backward()
t.update({"lce.hidden": hidden, "lce.weight": lm_head, "lce.labels": labels, "lce.loss": loss.detach().reshape(1),
          "lce.dhidden": hidden.grad, "lce.dweight": lm_head.grad})
hidden.grad = None; lm_head.grad = None
# Eagle's per-token weights: two samples (tokens 0..5, 6..10), each valid token weighted 1/sqrt(n_valid),
# all divided by the sum of sqrt(n_valid) (pre_calc_loss_weight, "square" averaging); reduction 'sum'.
valid = labels != -100
n1, n2 = int(valid[:6].sum()), int(valid[6:].sum())
den = n1 ** 0.5 + n2 ** 0.5
lw = torch.cat([torch.full((6,), 1 / n1 ** 0.5), torch.full((5,), 1 / n2 ** 0.5)]) / den
lw = lw.float()
ce = F.cross_entropy(F.linear(hidden, lm_head), labels, ignore_index=-100, reduction="none")
wloss = (ce * lw).sum()
wloss.backward()
t.update({"lce_w.loss_weight": lw, "lce_w.loss": wloss.detach().reshape(1),
          "lce_w.dhidden": hidden.grad, "lce_w.dweight": lm_head.grad})

# causal GQA attention with LSE and its backward
def attention(q, k, v, qoff):
    h, tq, d = q.shape
    hkv, s, _ = k.shape
    kk, vv = k.repeat_interleave(h // hkv, 0), v.repeat_interleave(h // hkv, 0)
    sc = q @ kk.transpose(1, 2) * d ** -0.5
    mask = (torch.arange(s)[None, :] > (torch.arange(tq)[:, None] + qoff))
    sc = sc.masked_fill(mask, float("-inf"))
    return torch.softmax(sc, -1) @ vv, torch.logsumexp(sc, -1)

for name, tq, qoff in (("attn", 9, 0), ("attn_offset", 5, 4)):
    q, k, v = randn(4, tq, 8), randn(2, 9, 8), randn(2, 9, 8)
    do = torch.randn(4, tq, 8, generator=g)
    out, lse = attention(q, k, v, qoff)
    out.backward(do)
    t.update({f"{name}.q": q, f"{name}.k": k, f"{name}.v": v, f"{name}.dout": do, f"{name}.out": out,
              f"{name}.lse": lse, f"{name}.dq": q.grad, f"{name}.dk": k.grad, f"{name}.dv": v.grad})

write_fixture("fused-kernels", t, generator="Fixtures/generate/fused_kernels.py", seed=SEED, tolerance="fp32-matmul",
              notes="PyTorch autograd fp32 forward and backward of RMSNorm, SwiGLU, the MLP, RoPE, linear+CE "
                    "(mean and Eagle-weighted), causal GQA attention (with a query offset).")
