"""Golden grids for chapter 02 (module Tiler): a Python reference of Eagle 2.5's Image Area
Preservation rule and of InternVL's older rule, written from the spec (docs/spec.md §1.2-1.4),
checked against the spec's worked-example table, then run over a few thousand random image sizes,
tile sizes and tile limits.

Candidate order (spec decision): tile count ascending, then fewer columns first.

Run: python3 Fixtures/generate/tiler_grids.py   (writes Fixtures/tiler-grids/)
"""
import random

import numpy as np

from fixturelib import write_fixture

SEED = 20261127


def candidates(min_tiles, max_tiles):
    """(columns, rows) with min <= columns*rows <= max, by count then fewer columns first."""
    out = []
    for n in range(max(1, min_tiles), max_tiles + 1):
        for c in range(1, n + 1):
            if n % c == 0:
                out.append((c, n // c))
    return out


def iap_grid(width, height, tile_size=448, min_tiles=1, max_tiles=12):
    """score = min(A_new / A_orig, 0.6) * min(r_t / r, r / r_t); first strictly best wins."""
    aspect = width / height
    best, best_score = None, -float("inf")
    for c, r in candidates(min_tiles, max_tiles):
        target = c / r
        area_ratio = (c * r * tile_size * tile_size) / (width * height)
        score = min(area_ratio, 0.6) * min(target / aspect, aspect / target)
        if score > best_score:
            best, best_score = (c, r), score
    return best


def internvl_grid(width, height, tile_size=448, min_tiles=1, max_tiles=12):
    """min |r - r_t|; on an exact tie take the later candidate if W*H > 0.5 * S^2 * c*r."""
    aspect = width / height
    area = width * height
    best, best_diff = (1, 1), float("inf")
    for c, r in candidates(min_tiles, max_tiles):
        diff = abs(aspect - c / r)
        if diff < best_diff:
            best, best_diff = (c, r), diff
        elif diff == best_diff and area > 0.5 * tile_size * tile_size * c * r:
            best = (c, r)
    return best


# The spec's worked examples (max 12 tiles, S = 448): (W, H) -> (InternVL grid, IAP grid).
WORKED = [
    ((448, 448), (1, 1), (1, 1)),
    ((640, 480), (4, 3), (4, 3)),
    ((1920, 1080), (4, 2), (4, 2)),
    ((3840, 2160), (4, 2), (4, 3)),
    ((2480, 3508), (2, 3), (3, 4)),
    ((1000, 100), (10, 1), (10, 1)),
]


def main():
    for (w, h), want_internvl, want_iap in WORKED:
        got_iap, got_internvl = iap_grid(w, h), internvl_grid(w, h)
        assert got_iap == want_iap, f"IAP {w}x{h}: {got_iap} != spec {want_iap}"
        assert got_internvl == want_internvl, f"InternVL {w}x{h}: {got_internvl} != spec {want_internvl}"
    assert candidates(1, 12)[:8] == [(1, 1), (1, 2), (2, 1), (1, 3), (3, 1), (1, 4), (2, 2), (4, 1)]

    rng = random.Random(SEED)
    rows = []
    for (w, h), _, _ in WORKED:
        rows.append((w, h, 448, 1, 12))
    for _ in range(3000):
        kind = rng.random()
        if kind < 0.6:      # photo-like sizes, log-uniform 1 .. 8000
            w = max(1, int(round(10 ** rng.uniform(0, 3.9))))
            h = max(1, int(round(10 ** rng.uniform(0, 3.9))))
        elif kind < 0.8:    # extreme aspect ratios
            w, h = rng.randint(1, 20000), rng.randint(1, 60)
            if rng.random() < 0.5:
                w, h = h, w
        else:               # multiples of the tile size: exact ties in aspect and area
            w, h = 448 * rng.randint(1, 8), 448 * rng.randint(1, 8)
        tile = rng.choice([448, 448, 448, 512, 224, 28, 14])
        lo = rng.choice([1, 1, 1, 2, 3, 4])
        hi = rng.choice([lo, 1, 2, 4, 6, 8, 12, 12, 12, 16, 24, 36])
        hi = max(lo, hi)
        rows.append((w, h, tile, lo, hi))
    iap = [iap_grid(w, h, s, lo, hi) for (w, h, s, lo, hi) in rows]
    ivl = [internvl_grid(w, h, s, lo, hi) for (w, h, s, lo, hi) in rows]
    a = np.array(rows, dtype=np.int32)
    differ = sum(1 for x, y in zip(iap, ivl) if x != y)
    write_fixture(
        "tiler-grids",
        {
            "width": a[:, 0], "height": a[:, 1], "tile_size": a[:, 2], "min_tiles": a[:, 3], "max_tiles": a[:, 4],
            "iap_columns": np.array([g[0] for g in iap], dtype=np.int32),
            "iap_rows": np.array([g[1] for g in iap], dtype=np.int32),
            "internvl_columns": np.array([g[0] for g in ivl], dtype=np.int32),
            "internvl_rows": np.array([g[1] for g in ivl], dtype=np.int32),
        },
        generator="Fixtures/generate/tiler_grids.py", seed=SEED, tolerance="exact",
        notes=f"{len(rows)} cases (the first {len(WORKED)} are the spec's worked examples); "
              f"the two rules disagree on {differ} of them",
    )


if __name__ == "__main__":
    main()
