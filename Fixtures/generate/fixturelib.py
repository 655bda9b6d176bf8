"""Shared helpers for Eaglet's fixture generators.

A fixture is a folder Fixtures/NAME/ holding NAME.safetensors (the tensors) and manifest.json
(format version, generator, library versions, seed, shapes, tolerance, notes). The Swift loader
(`_TestSupport.Fixture`) refuses a manifest whose format_version differs from its own.

`seeded(shape, seed, scale)` is the Python twin of Swift's `Tensor.seeded`: SplitMix64 in row-major
order, the top 24 bits of each draw mapped to u in [-1, 1) exactly, times `scale` in float32. Both sides
produce bit-identical weights, so real-width fixtures need not store them.
"""
import json
import os
import platform
import sys

import numpy as np

FORMAT_VERSION = 1
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MASK = (1 << 64) - 1


def splitmix64(seed: int, n: int) -> np.ndarray:
    """n successive SplitMix64 outputs from `seed`, as uint64 (vectorised over the counter)."""
    with np.errstate(over="ignore"):
        k = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(seed & MASK) + k * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def seeded(shape, seed: int, scale: float = 1.0) -> np.ndarray:
    """float32 array of `shape`: scale * u, u = (top 24 bits) * 2**-23 - 1, row-major draw order."""
    n = int(np.prod(shape)) if len(shape) else 1
    bits = splitmix64(seed, n) >> np.uint64(40)
    u = bits.astype(np.float32) * np.float32(1.0 / 8388608.0) - np.float32(1.0)
    return (u * np.float32(scale)).astype(np.float32).reshape(shape)


def versions() -> dict:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("torch", "transformers", "tokenizers", "safetensors", "PIL"):
        try:
            m = __import__(mod)
            out["pillow" if mod == "PIL" else mod] = m.__version__
        except ImportError:
            pass
    return out


def write_fixture(name: str, tensors: dict, *, generator: str, seed, tolerance: str, notes: str = "",
                  extra: dict | None = None) -> str:
    """Writes Fixtures/NAME/NAME.safetensors and manifest.json; returns the folder."""
    from safetensors.numpy import save_file

    folder = os.path.join(ROOT, "Fixtures", name)
    os.makedirs(folder, exist_ok=True)
    arrays = {}
    for k, v in tensors.items():
        a = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        arrays[k] = np.array(a, order="C", copy=True)  # keeps 0-d arrays 0-d (ascontiguousarray would not)
    ver = versions()
    save_file(arrays, os.path.join(folder, f"{name}.safetensors"),
              metadata={k: str(v) for k, v in ver.items()})
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "generator": generator,
        "command": f"python3 {generator}",
        "versions": ver,
        "seed": seed,
        "tolerance": tolerance,
        "tensors": {k: {"shape": list(a.shape), "dtype": str(a.dtype)} for k, a in sorted(arrays.items())},
        "notes": notes,
    }
    if extra:
        manifest.update(extra)
    with open(os.path.join(folder, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(f"wrote Fixtures/{name} ({len(arrays)} tensors)", file=sys.stderr)
    return folder
