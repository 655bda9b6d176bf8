"""Golden values for chapter 05 (module Connector): pixel shuffle (ratio 0.5, v2 order) and mlp1,
written in PyTorch from the spec (section 4) — the view/permute sequence of InternVL's pixel_shuffle
with the final permute, then nn.Sequential(LayerNorm(eps 1e-5), Linear, GELU(), Linear).

Shapes are small and odd in channels: a 6×6 grid and a 4×10 grid of 7-channel patches, N = 2;
mlp1 maps 28 → 13. The fixture file doubles as a checkpoint holding mlp1.0, mlp1.1, mlp1.3.

Run: python3 Fixtures/generate/connector.py   (writes Fixtures/connector/)
"""
import torch
from torch import nn

from fixturelib import write_fixture

SEED = 4
torch.manual_seed(SEED)


def pixel_shuffle_v2(x, rows, cols, scale=0.5):
    """x (N, rows*cols, C) -> (N, rows*cols*scale^2, C/scale^2), the reference's view/permute order."""
    n, _, c = x.shape
    x = x.reshape(n, rows, cols, c)
    x = x.view(n, rows, int(cols * scale), int(c / scale))
    x = x.permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(cols * scale), int(rows * scale), int(c / (scale * scale)))
    x = x.permute(0, 2, 1, 3).contiguous()
    return x.reshape(n, -1, x.shape[-1])


t = {}
C, D = 7, 13
x_sq = torch.randn(2, 36, C)
x_rect = torch.randn(2, 40, C)
t["shuffle.square.x"], t["shuffle.square.out"] = x_sq, pixel_shuffle_v2(x_sq, 6, 6)
t["shuffle.rect.x"], t["shuffle.rect.out"] = x_rect, pixel_shuffle_v2(x_rect, 4, 10)
# the spec's index formula, checked here too
o = t["shuffle.square.out"]
assert torch.equal(o[1, 1 * 3 + 2], torch.cat([x_sq[1, 2 * 6 + 4], x_sq[1, 2 * 6 + 5], x_sq[1, 3 * 6 + 4], x_sq[1, 3 * 6 + 5]]))

mlp1 = nn.Sequential(nn.LayerNorm(4 * C, eps=1e-5), nn.Linear(4 * C, D), nn.GELU(), nn.Linear(D, D))
with torch.no_grad():
    mlp1[0].weight.copy_(1 + 0.3 * torch.randn(4 * C))
    mlp1[0].bias.copy_(0.2 * torch.randn(4 * C))
    for k, v in mlp1.state_dict().items():
        t["mlp1." + k] = v.clone()
    t["mlp1.out"] = mlp1(t["shuffle.square.out"])
    t["connector.out"] = t["mlp1.out"]

write_fixture("connector", t, generator="Fixtures/generate/connector.py", seed=SEED, tolerance="fp32-block",
              notes="shuffle.* are exact (a layout op); mlp1.out is LayerNorm+2 matmuls+GELU (fp32-block)")
