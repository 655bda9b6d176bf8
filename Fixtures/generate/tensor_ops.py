"""Golden values for chapter 01 (module Tensor): PyTorch fp32 results of every op Eaglet's Tensor
module implements, on odd shapes so that transposed or mis-strided indexing cannot pass by accident.

Run: python3 Fixtures/generate/tensor_ops.py   (writes Fixtures/tensor-ops/)
"""
import torch
import torch.nn.functional as F

from fixturelib import seeded, splitmix64, write_fixture

SEED = 20261127
torch.manual_seed(SEED)
g = torch.Generator().manual_seed(SEED)


def randn(*shape):
    return torch.randn(*shape, generator=g, dtype=torch.float32)


t = {}
# matmul: (M, K) x (K, N) with odd sizes; and a @ c.T for the transposed-B path.
a, b, c = randn(37, 53), randn(53, 29), randn(29, 53)
t["matmul.a"], t["matmul.b"], t["matmul.out"] = a, b, a @ b
t["matmul.c"], t["matmul_tb.out"] = c, a @ c.T
# batched matmul (B, M, K) x (B, K, N)
ba, bb = randn(3, 7, 11), randn(3, 11, 5)
t["bmm.a"], t["bmm.b"], t["bmm.out"] = ba, bb, torch.bmm(ba, bb)
# linear: y = x W^T + b
lx, lw, lb = randn(2, 5, 19), randn(13, 19), randn(13)
t["linear.x"], t["linear.weight"], t["linear.bias"], t["linear.out"] = lx, lw, lb, F.linear(lx, lw, lb)

# row-wise ops on (T, C) = (9, 67), with a few large values to exercise softmax's max-subtraction
x = randn(9, 67) * 3
x[0, 5] = 40.0
x[1, :] = -30.0
t["rows.x"] = x
t["softmax.out"] = torch.softmax(x, dim=-1)
w, bias = randn(67), randn(67)
t["layer_norm.weight"], t["layer_norm.bias"] = w, bias
t["layer_norm.out"] = F.layer_norm(x, (67,), w, bias, eps=1e-6)
t["rms_norm.out"] = F.rms_norm(x, (67,), w, eps=1e-6)
t["gelu_tanh.out"] = F.gelu(x, approximate="tanh")
t["gelu_erf.out"] = F.gelu(x)
t["silu.out"] = F.silu(x)

# layout: permute (2, 3, 4, 5) by (0, 2, 1, 3) as attention heads are split
p = randn(2, 3, 4, 5)
t["permute.x"], t["permute.out"] = p, p.permute(0, 2, 1, 3).contiguous()

# dtype round trips: values PyTorch narrows to bf16 / f16 and widens back (ties, subnormals, overflow)
special = torch.tensor([0.0, -0.0, 1.0, 1.00390625, 1.01171875, 3.14159265, 65504.0, 65520.0, 1e-8, 6e-8,
                        -2.5e-5, 1e38, 3.4e38, float("inf"), float("-inf")], dtype=torch.float32)
dvals = torch.cat([special, randn(200) * 100, randn(100) * 1e-4])
t["dtype.x"] = dvals
t["dtype.bf16_roundtrip"] = dvals.to(torch.bfloat16).to(torch.float32)
t["dtype.f16_roundtrip"] = dvals.to(torch.float16).to(torch.float32)

# the seeded generator: the first values of SplitMix64(seed 42) and a scaled seeded tensor,
# computed here in numpy; Swift must reproduce them bit for bit.
raw = splitmix64(42, 8)
t["seeded.raw_hi"] = torch.tensor((raw >> 32).astype("int64"))
t["seeded.raw_lo"] = torch.tensor((raw & 0xFFFFFFFF).astype("int64"))
t["seeded.t_3x5_seed7_scale0.02"] = torch.from_numpy(seeded((3, 5), 7, 0.02))

write_fixture("tensor-ops", t, generator="Fixtures/generate/tensor_ops.py", seed=SEED, tolerance="fp32-op",
              notes="matmul rows use fp32-matmul; dtype and seeded rows are exact")
