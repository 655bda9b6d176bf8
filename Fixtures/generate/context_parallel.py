"""Golden full causal attention for context parallelism (issue 10, docs/spec.md §8.2-8.4).

For a few shapes: q (H, T, D), k/v (Hkv, T, D) drawn with fixturelib.seeded, the full causal attention
output (H, T, D) and its log-sum-exp (H, T) computed by PyTorch with an explicit mask (query head h
reads kv head h // (H / Hkv)). The packed case has cu_seqlens: a token attends only to earlier tokens of
its own sequence. The Swift tests cut these tensors with the same sharding functions the schemes use
and compare every rank's out and LSE. Two cases (gqa, packed) also store an upstream gradient dO and the autograd
gradients dq, dk, dv (for the ring / zigzag backward).
"""
import torch

from fixturelib import seeded, write_fixture

CASES = {
    # name: (H, Hkv, T, D, cu_seqlens or None, seed)
    "mha": (6, 6, 48, 7, None, 1001),
    "gqa": (8, 2, 96, 6, None, 1002),
    "packed": (4, 2, 192, 5, [0, 48, 144, 192], 1003),
}

GRAD_CASES = ("gqa", "packed")   # these also store dout and the autograd dq, dk, dv


def full_attention(q, k, v, cu):
    h, t, d = q.shape
    rep = h // k.shape[0]
    kk = k.repeat_interleave(rep, dim=0)
    vv = v.repeat_interleave(rep, dim=0)
    s = (q @ kk.transpose(1, 2)) / (d ** 0.5)
    pos = torch.arange(t)
    seq = torch.zeros(t, dtype=torch.long)
    for i in range(len(cu) - 1):
        seq[cu[i]:cu[i + 1]] = i
    allowed = (pos[None, :] <= pos[:, None]) & (seq[None, :] == seq[:, None])
    s = s.masked_fill(~allowed, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    out = torch.softmax(s, dim=-1) @ vv
    return out, lse


tensors = {}
for name, (h, hkv, t, d, cu, seed) in CASES.items():
    cu = cu or [0, t]
    q = torch.from_numpy(seeded([h, t, d], seed, 1.0))
    k = torch.from_numpy(seeded([hkv, t, d], seed + 1, 1.0))
    v = torch.from_numpy(seeded([hkv, t, d], seed + 2, 1.0))
    if name in GRAD_CASES:
        q.requires_grad_(True); k.requires_grad_(True); v.requires_grad_(True)
    out, lse = full_attention(q, k, v, cu)
    tensors[f"{name}.q"] = q.detach()
    tensors[f"{name}.k"] = k.detach()
    tensors[f"{name}.v"] = v.detach()
    tensors[f"{name}.out"] = out.detach()
    tensors[f"{name}.lse"] = lse.detach()
    tensors[f"{name}.cu_seqlens"] = torch.tensor(cu, dtype=torch.int64)
    if name in GRAD_CASES:
        do = torch.from_numpy(seeded([h, t, d], seed + 3, 1.0))
        out.backward(do)
        tensors[f"{name}.dout"] = do
        tensors[f"{name}.dq"] = q.grad
        tensors[f"{name}.dk"] = k.grad
        tensors[f"{name}.dv"] = v.grad

write_fixture("context-parallel", tensors, generator="Fixtures/generate/context_parallel.py",
              seed={n: c[5] for n, c in CASES.items()}, tolerance="fp32-block",
              notes="q/k/v = seeded(seed), seeded(seed+1), seeded(seed+2), scale 1; dout = seeded(seed+3); "
                    "full causal attention per packed sequence, scale D^-1/2")
