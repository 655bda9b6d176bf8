"""Golden allocations for chapter 11 (module ADS): a Python reference of Automatic Degrade Sampling
written from the spec (docs/spec.md §2.1 and the "ADS" decision row), run over a few thousand random
requests and configurations.

The rule (phase 1 with t = 1, then phase 2):
  B = L - text (text > L: error "text");  one tile per image must fit (error "images");
  n* = min(sum candidates, floor((B - M*P) / P));  minimums m_i = min(N_min, c_i), sum > n*: error "minimums";
  the rest shared in proportion to c_i - m_i by largest remainder (exact fractions), ties to the earlier input;
  t* = largest cap whose IAP tiles (+ thumbnail when > 1 tile) fit in B - n*P (none fits: error "images").
IAP (docs/spec.md §1.3) with candidates by tile count, then fewer columns first (Eaglet's documented order).

Stored flat (safetensors, int32), one row per case, variable-length lists with offsets:
  cfg: [L, text, P, N_min, tile_size, thumbnail]   caps (+ caps_offsets)   images (W, H pairs, + offsets)
  candidates (+ offsets)   status (0 ok, 1 text, 2 images, 3 minimums)   frames (+ offsets)   tile_cap
  tiles (+ offsets)   visual_tokens   total_tokens

Run: python3 Fixtures/generate/ads_reference.py   (writes Fixtures/ads-reference/)
"""
import random
from fractions import Fraction

import numpy as np

from fixturelib import write_fixture

SEED = 20261127
STATUS = {"ok": 0, "text": 1, "images": 2, "minimums": 3}


class ADSFailure(Exception):
    def __init__(self, kind):
        super().__init__(kind)
        self.kind = kind


def iap_tiles(width, height, cap, tile_size, thumbnail):
    """Grid tiles of the IAP choice among 1..cap tiles, plus one thumbnail when the grid has > 1 tile."""
    aspect = width / height
    best, best_score = 1, -float("inf")
    for n in range(1, cap + 1):
        for c in range(1, n + 1):
            if n % c:
                continue
            r = n // c
            score = min((c * r * tile_size * tile_size) / (width * height), 0.6) * min((c / r) / aspect, aspect / (c / r))
            if score > best_score:
                best, best_score = n, score
    return best + (1 if thumbnail and best > 1 else 0)


def shares(total, weights):
    """Largest remainder with exact fractions: floor of each quota, then +1 to the biggest remainders."""
    w = sum(weights)
    if w == 0:
        assert total == 0
        return [0] * len(weights)
    quotas = [Fraction(total * x, w) for x in weights]
    out = [int(q) for q in quotas]   # floor: quotas are >= 0
    left = total - sum(out)
    # Sort by remainder, biggest first; Python's sort is stable, so ties keep the earlier input first.
    for i in sorted(range(len(weights)), key=lambda i: -(quotas[i] - out[i]))[:left]:
        out[i] += 1
    return out


def ads(L, text, images, candidates, P=256, caps=(12, 8, 6, 4, 2, 1), n_min=8, tile_size=448, thumbnail=True):
    if text > L:
        raise ADSFailure("text")
    budget = L - text
    M = len(images)
    if M * P > budget:
        raise ADSFailure("images")
    n_star = min(sum(candidates), (budget - M * P) // P)
    minimums = [min(n_min, c) for c in candidates]
    if sum(minimums) > n_star:
        raise ADSFailure("minimums")
    extra = shares(n_star - sum(minimums), [c - m for c, m in zip(candidates, minimums)])
    frames = [m + e for m, e in zip(minimums, extra)]
    left = budget - n_star * P
    for cap in sorted(caps, reverse=True):
        tiles = [iap_tiles(w, h, cap, tile_size, thumbnail) for w, h in images]
        if sum(tiles) * P <= left:
            visual = P * (sum(tiles) + n_star)
            return {"frames": frames, "tile_cap": cap, "tiles": tiles, "visual_tokens": visual, "total_tokens": visual + text}
    raise ADSFailure("images")


def check_by_hand():
    # One video of 600 candidates, 1000 text tokens, L = 32768: B = 31768, n* = floor(31768/256) = 124.
    a = ads(32768, 1000, [], [600])
    assert a["frames"] == [124] and a["tile_cap"] == 12 and a["visual_tokens"] == 124 * 256
    # Two inputs 100 and 20 candidates, n* = 40: minimums 8 + 8, rest 24 shared 92:12 -> 21.23, 2.77 -> 21, 3.
    a = ads(40 * 256 + 50, 50, [], [100, 20])
    assert a["frames"] == [29, 11], a
    # Images only: a 1920x1080 image at L = 8192 with 100 text: 4x2 grid + thumbnail = 9 tiles = 2304 tokens.
    a = ads(8192, 100, [(1920, 1080)], [])
    assert a["tile_cap"] == 12 and a["tiles"] == [9]
    # Alabama paradox of largest remainder: weights 6, 6, 2 get 4, 4, 2 of 10 but 5, 5, 1 of 11.
    assert shares(10, [6, 6, 2]) == [4, 4, 2] and shares(11, [6, 6, 2]) == [5, 5, 1]
    for kind, args in [("text", (100, 101, [], [])), ("images", (600, 100, [(10, 10), (10, 10)], [])),
                       ("minimums", (16 * 256, 0, [], [8, 8, 8]))]:
        try:
            ads(*args)
            raise AssertionError(kind)
        except ADSFailure as e:
            assert e.kind == kind, (e.kind, kind)


def random_case(rng):
    P = rng.choice([256, 256, 256, 64, 100])
    caps = rng.choice([(12, 8, 6, 4, 2, 1)] * 6 + [(6, 3, 1), (4, 2), (9, 5, 2, 1)])
    n_min = rng.choice([8, 8, 8, 1, 4, 16])
    tile_size = rng.choice([448, 448, 448, 512, 224])
    thumbnail = rng.random() < 0.9
    shape = rng.random()
    images = [(rng.choice([rng.randint(1, 64), rng.randint(100, 4000), rng.randint(1, 12000)]),
               rng.choice([rng.randint(1, 64), rng.randint(100, 4000), rng.randint(1, 12000)]))
              for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 6]) if shape < 0.8 else 0)]
    candidates = [rng.choice([rng.randint(1, 12), rng.randint(1, 600), rng.randint(100, 1024)])
                  for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 5]))]
    L = rng.choice([rng.randint(1, 4096), rng.randint(1, 40000), 32768, 65536, 131072, rng.randint(1000, 200000)])
    text = rng.choice([rng.randint(0, 300), rng.randint(0, 5000), rng.randint(0, L + 50), L, L + 1])
    return dict(L=L, text=text, images=images, candidates=candidates, P=P, caps=caps, n_min=n_min,
                tile_size=tile_size, thumbnail=thumbnail)


def main():
    check_by_hand()
    rng = random.Random(SEED)
    cases = [random_case(rng) for _ in range(4000)]
    # Also the schedule contexts on the same few samples, and edge cases: no inputs at all, exact fits.
    cases += [dict(L=L, text=0, images=[], candidates=[], P=256, caps=(12, 8, 6, 4, 2, 1), n_min=8, tile_size=448, thumbnail=True)
              for L in (1, 255, 256)]
    cases += [dict(L=8 * 256 + 7, text=7, images=[], candidates=[8], P=256, caps=(12, 8, 6, 4, 2, 1), n_min=8,
                   tile_size=448, thumbnail=True)]
    cols = {k: [] for k in ["cfg", "caps", "caps_offsets", "images", "images_offsets", "candidates", "candidates_offsets",
                            "status", "frames", "frames_offsets", "tile_cap", "tiles", "tiles_offsets", "visual_tokens", "total_tokens"]}
    for k in ("caps_offsets", "images_offsets", "candidates_offsets", "frames_offsets", "tiles_offsets"):
        cols[k].append(0)
    counts = {k: 0 for k in STATUS}
    for c in cases:
        cols["cfg"].append([c["L"], c["text"], c["P"], c["n_min"], c["tile_size"], int(c["thumbnail"])])
        cols["caps"] += list(c["caps"]); cols["caps_offsets"].append(len(cols["caps"]))
        cols["images"] += [x for wh in c["images"] for x in wh]; cols["images_offsets"].append(len(cols["images"]) // 2)
        cols["candidates"] += c["candidates"]; cols["candidates_offsets"].append(len(cols["candidates"]))
        try:
            a = ads(c["L"], c["text"], c["images"], c["candidates"], c["P"], c["caps"], c["n_min"], c["tile_size"], c["thumbnail"])
            status = "ok"
        except ADSFailure as e:
            a = {"frames": [], "tile_cap": 0, "tiles": [], "visual_tokens": 0, "total_tokens": 0}
            status = e.kind
        counts[status] += 1
        cols["status"].append(STATUS[status])
        cols["frames"] += a["frames"]; cols["frames_offsets"].append(len(cols["frames"]))
        cols["tiles"] += a["tiles"]; cols["tiles_offsets"].append(len(cols["tiles"]))
        cols["tile_cap"].append(a["tile_cap"]); cols["visual_tokens"].append(a["visual_tokens"]); cols["total_tokens"].append(a["total_tokens"])
    tensors = {k: np.array(v, dtype=np.int32).reshape(-1, 6) if k == "cfg" else np.array(v, dtype=np.int32) for k, v in cols.items()}
    write_fixture("ads-reference", tensors, generator="Fixtures/generate/ads_reference.py", seed=SEED, tolerance="exact",
                  notes=f"{len(cases)} random ADS requests; outcomes {counts}. Status 0 ok, 1 text > L, 2 images do not fit, 3 minimums do not fit.")
    print(counts)


if __name__ == "__main__":
    main()
