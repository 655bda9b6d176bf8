"""Golden values for q8_0 (chapter 15, module Tensor's Q8Matrix and the C kernels): the bytes that `gguf`'s numpy
implementation of llama.cpp's Q8_0 (documented bit-exact with ggml-quants.c's reference) writes for a matrix
chosen to hit the edge cases, its dequantized values, and a matrix-vector product of the dequantized weights and
the dequantized activation in float64.

  w      (9, 96) float32: seeded normal rows at scales 1e-3 … 1e3, one all-zero row, one row of exact
         half-steps (k + 0.5)·d that test the rounding of ties (away from zero, as C's roundf), one row whose
         maximum needs a subnormal fp16 scale, and one with a lone large value per block
  blocks (9·3, 34) uint8: gguf.quants.quantize(w, Q8_0) — fp16 scale (little-endian) then 32 int8
  dequantized (9, 96) float32: gguf.quants.dequantize(blocks)
  x      (96,) float32, x_blocks (3, 34) uint8 and x_dequantized: the activation, quantized the same way but
         with the scale kept in fp32 by Eaglet (so only the values q are compared for x; scale to within 1 ulp
         of fp16's rounding is not asked)
  y      (9,) float64 → float32: dequantized(w) · dequant_fp32_scale(x)

Run: cd Fixtures/generate && python3 q8_0.py   (writes Fixtures/q8_0/)
"""
import gguf
import numpy as np

from fixturelib import write_fixture

SEED = 20261204
rng = np.random.default_rng(SEED)
R, C = 9, 96

w = np.zeros((R, C), dtype=np.float32)
for r, scale in enumerate([1e-3, 0.02, 1.0, 30.0, 1e3]):
    w[r] = (rng.standard_normal(C) * scale).astype(np.float32)
# row 5: all zero (d = 0, q = 0)
# row 6: ties. With max = 127·d exactly representable, values (k + 0.5)·d round away from zero.
d = np.float32(0.25)
row = np.array([(k % 127 + 0.5) * (1 if k % 2 else -1) for k in range(C)], dtype=np.float32) * d
row[::32] = 127 * d
w[6] = row
# row 7: tiny values: max|x|/127 is a subnormal fp16
w[7] = (rng.standard_normal(C) * 1e-6).astype(np.float32)
# row 8: one large value per block, the rest small (most q round to 0 or ±1)
w[8] = (rng.standard_normal(C) * 0.01).astype(np.float32)
w[8, [3, 40, 77]] = [5.0, -7.5, 100.0]

blocks = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0).reshape(R * C // 32, 34)
deq = gguf.quants.dequantize(blocks.reshape(R, -1), gguf.GGMLQuantizationType.Q8_0).reshape(R, C)

x = (rng.standard_normal(C) * 2.0).astype(np.float32)
x_blocks = gguf.quants.quantize(x[None, :], gguf.GGMLQuantizationType.Q8_0).reshape(C // 32, 34)
# Eaglet keeps the activation's scale in fp32: d = max|x|/127, q as ggml.
xb = x.reshape(-1, 32)
xd = (np.abs(xb).max(axis=1) / np.float32(127)).astype(np.float32)
xq = x_blocks[:, 2:].view(np.int8).astype(np.float32)
x_deq = (xq * xd[:, None]).reshape(C).astype(np.float32)
y = (deq.astype(np.float64) @ x_deq.astype(np.float64)).astype(np.float32)

write_fixture(
    "q8_0",
    {"w": w, "blocks": blocks, "dequantized": deq.astype(np.float32), "x": x, "x_blocks": x_blocks,
     "x_dequantized": x_deq, "y": y},
    generator="Fixtures/generate/q8_0.py", seed=SEED,
    tolerance="exact bytes for blocks; fp32Block for y",
    notes="gguf 0.19.0 (pinned in requirements.txt)",
)
