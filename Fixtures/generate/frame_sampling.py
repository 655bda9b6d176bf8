"""Golden frame choices for chapter 10 (module Video): a Python reference of the HF Eagle 2.5 processor's
frame-sampling policy written from the spec (docs/spec.md §6, `smart_nframes`), over many random videos
and requests.

  nframes mode: n = round(N / 2) * 2                (Python round: half to even)
  fps mode:     n = T / r * fps; n = min(min(max(n, ceil(min/2)*2), floor(max/2)*2), T); n = floor(n/2)*2
                (max defaults to min(256, T)); n must lie in [2, T]
  indices = round(linspace(0, T-1, n)), timestamps = idx / r, sample fps = n / T * r.

Indices are computed exactly (Fraction, half to even). The HF code computes torch.linspace in float32 and
rounds; on long videos float32 lands on the other side of a .5 now and then, so the two differ by one frame
there. The manifest notes record how often.

Stored (safetensors): cases (T, mode 0 fps / 1 nframes, N or -1, min, max or -1, status 0 ok / 1 out of range),
fps and video_fps (float64), indices (+ offsets), timestamps (float64), sample_fps.

Run: python3 Fixtures/generate/frame_sampling.py   (writes Fixtures/frame-sampling/)
"""
import math
import random
from fractions import Fraction

import numpy as np

from fixturelib import write_fixture

SEED = 20261127


def count(total, video_fps, fps=2.0, min_frames=4, max_frames=None, nframes=None):
    if nframes is not None:
        n = round(nframes / 2) * 2
    else:
        lo = math.ceil(min_frames / 2) * 2
        hi = math.floor((max_frames if max_frames is not None else min(256, total)) / 2) * 2
        n = total / video_fps * fps
        n = min(min(max(n, lo), hi), total)
        n = math.floor(n / 2) * 2
    if not (2 <= n <= total):
        raise ValueError(n)
    return n


def indices(total, n):
    return [round(Fraction(k * (total - 1), n - 1)) for k in range(n)]


def main():
    rng = random.Random(SEED)
    rows, fps_col, rate_col, idx, offsets, stamps, sample_fps = [], [], [], [], [0], [], []
    torch_differs, torch_checked, torch_worst, torch_smallest_t = 0, 0, 0, None
    try:
        import torch
    except ImportError:
        torch = None
    for case in range(1000):
        total = rng.choice([rng.randint(0, 12), rng.randint(1, 400), rng.randint(100, 200000)])
        video_fps = rng.choice([25.0, 30.0, 29.97002997002997, 24.0, 60.0, 1.0, rng.uniform(0.5, 120)])
        fps = rng.choice([2.0, 2.0, 1.0, 0.5, 4.0, rng.uniform(0.1, 10)])
        min_frames = rng.choice([4, 4, 8, 1, 5, 0])
        max_frames = rng.choice([None, None, 512, 64, 33, rng.randint(0, 600)])
        nframes = rng.choice([None] * 4 + [rng.randint(0, 600)])
        try:
            n = count(total, video_fps, fps, min_frames, max_frames, nframes)
            ix = indices(total, n)
            status = 0
            if torch is not None:
                torch_checked += 1
                ref = torch.linspace(0, total - 1, n).round().long().tolist()
                if ref != ix:
                    torch_differs += 1
                    torch_worst = max(torch_worst, max(abs(a - b) for a, b in zip(ref, ix)))
                    torch_smallest_t = total if torch_smallest_t is None else min(torch_smallest_t, total)
        except ValueError:
            ix, status = [], 1
        rows.append([total, 1 if nframes is not None else 0, -1 if nframes is None else nframes, min_frames,
                     -1 if max_frames is None else max_frames, status])
        fps_col.append(fps)
        rate_col.append(video_fps)
        idx += ix
        offsets.append(len(idx))
        stamps += [i / video_fps for i in ix]
        sample_fps.append(len(ix) / max(total, 1e-6) * video_fps if ix else 0.0)
    tensors = {"cases": np.array(rows, dtype=np.int32), "fps": np.array(fps_col), "video_fps": np.array(rate_col),
               "indices": np.array(idx, dtype=np.int32), "offsets": np.array(offsets, dtype=np.int32),
               "timestamps": np.array(stamps), "sample_fps": np.array(sample_fps)}
    note = (f"{len(rows)} random requests; {sum(r[5] for r in rows)} out of range. torch.linspace(float32).round() "
            f"differs from the exact half-to-even indices on {torch_differs} of {torch_checked} valid cases, by at most "
            f"{torch_worst} frame(s), the shortest such video having {torch_smallest_t} frames (float32 error near .5).")
    write_fixture("frame-sampling", tensors, generator="Fixtures/generate/frame_sampling.py", seed=SEED,
                  tolerance="exact", notes=note)
    print(note)


if __name__ == "__main__":
    main()
