"""Golden values for chapter 02 (module Imaging, and Tiler's pixel pipeline), written by PIL.

1. Small image files in many encodings (PNG: RGB, RGBA, grey, grey+alpha, palette with transparency,
   1-, 2- and 16-bit grey, 16-bit RGB, Adam7-interlaced RGB, EXIF orientations 2-8; JPEG: YCbCr
   4:2:0, 4:2:2 and 4:4:4, grey, progressive, CMYK, EXIF orientation 6) saved under Fixtures/imaging/files/, and what transformers' `load_image`
   makes of each: ImageOps.exif_transpose, then convert("RGB") -> uint8 (H, W, 3).
2. PIL's Image.resize(size, BICUBIC) of several of them to up-, down- and mixed sizes -> uint8.
3. The whole tiling pipeline at small tile sizes: the IAP grid (tiler_grids.iap_grid), resize to
   (columns*S, rows*S), row-major crops, thumbnail when more than one tile, x*(1/255) then
   (x-0.5)/0.5 -> float32 pixel_values (N, 3, S, S).

Run: python3 Fixtures/generate/imaging.py   (writes Fixtures/imaging/)
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from fixturelib import ROOT, write_fixture
from tiler_grids import iap_grid

SEED = 20261127
FILES = os.path.join(ROOT, "Fixtures", "imaging", "files")


def photo_like(w, h, phase=0.0):
    """Smooth colour gradients, a sinusoid and a few hard-edged shapes (deterministic)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 127.5 + 110 * np.sin(x / 5.0 + phase) * np.cos(y / 7.0)
    img = np.stack([r, g, b], axis=-1)
    img[(x - w * 0.3) ** 2 + (y - h * 0.6) ** 2 < (min(w, h) * 0.2) ** 2] = (250, 240, 20)
    img[int(h * 0.1):int(h * 0.3), int(w * 0.6):int(w * 0.9)] = (10, 30, 200)
    return Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB")


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(width, height, bit_depth, color_type, rows):
    """A PNG written by hand (filter 0 on every row) for encodings PIL cannot write."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    data = b"".join(b"\x00" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(data, 9))
            + png_chunk(b"IEND", b""))


def interlaced_png(img):
    """An 8-bit RGB PNG with Adam7 interlacing, written by hand (PIL reads these but cannot write them)."""
    a = np.asarray(img, dtype=np.uint8)
    h, w = a.shape[:2]
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    data = b""
    for x0, y0, dx, dy in passes:
        sub = a[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        data += b"".join(b"\x00" + row.tobytes() for row in sub)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(data, 9))
            + png_chunk(b"IEND", b""))


def save(name, img, **kw):
    path = os.path.join(FILES, name)
    img.save(path, **kw)
    return path


def write_bytes(name, data):
    path = os.path.join(FILES, name)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def exif_with_orientation(o):
    e = Image.Exif()
    e[0x0112] = o
    return e.tobytes()


def load_like_transformers(path):
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def normalise(img):
    """x * (1/255) in float64 -> float32, then (x - 0.5) / 0.5 in float32; (3, H, W)."""
    x = (np.asarray(img, dtype=np.uint8).astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - np.float32(0.5)) / np.float32(0.5)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def pixel_values(img, tile, max_tiles, min_tiles=1):
    c, r = iap_grid(img.width, img.height, tile, min_tiles, max_tiles)
    big = img.resize((c * tile, r * tile), Image.BICUBIC)
    tiles = [big.crop(((k % c) * tile, (k // c) * tile, (k % c + 1) * tile, (k // c + 1) * tile)) for k in range(c * r)]
    if c * r > 1:
        tiles.append(img.resize((tile, tile), Image.BICUBIC))
    return (c, r), np.stack([normalise(t) for t in tiles])


def main():
    os.makedirs(FILES, exist_ok=True)
    files = {}
    photo = photo_like(67, 45)
    files["gradient.png"] = save("gradient.png", photo)
    text = Image.new("L", (97, 31), 235)
    d = ImageDraw.Draw(text)
    d.text((3, 2), "Eagle 2.5", fill=10)
    d.text((3, 16), "IAP tiles", fill=60)
    files["text.png"] = save("text.png", text)
    lines = Image.new("RGBA", (50, 38), (255, 255, 255, 0))
    d = ImageDraw.Draw(lines)
    for i in range(0, 50, 4):
        d.line([(i, 0), (49 - i, 37)], fill=(200 - 3 * i, 20 + 4 * i, 90, 40 + 4 * i), width=1)
    d.line([(0, 19), (49, 19)], fill=(0, 0, 0, 255), width=1)
    files["lines_rgba.png"] = save("lines_rgba.png", lines)
    pal = Image.fromarray((np.arange(23 * 17).reshape(17, 23) % 5).astype(np.uint8), "P")
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 250, 250, 0, 30, 30, 30])
    files["palette_trns.png"] = save("palette_trns.png", pal, transparency=2)
    la = Image.fromarray(np.stack([np.tile(np.arange(0, 210, 10, dtype=np.uint8), (9, 1)),
                                   np.full((9, 21), 77, np.uint8)], axis=-1), "LA")
    files["grey_alpha.png"] = save("grey_alpha.png", la)
    bilevel = Image.fromarray((np.indices((11, 14)).sum(0) % 3 == 0).astype(np.uint8) * 255, "L").convert("1")
    files["bilevel.png"] = save("bilevel.png", bilevel)
    g16 = (np.arange(19 * 13, dtype=np.uint16).reshape(13, 19) * 5)      # 0 .. 1230: PIL clamps > 255
    files["grey16.png"] = save("grey16.png", Image.fromarray(g16))
    rgb16 = (np.arange(11 * 13 * 3, dtype=np.uint32).reshape(11, 13, 3) * 151 % 65536).astype(">u2")
    files["rgb16.png"] = write_bytes("rgb16.png", raw_png(13, 11, 16, 2, [row.tobytes() for row in rgb16]))
    g2 = (np.arange(9 * 16).reshape(9, 16) % 4).astype(np.uint8)
    packed = [bytes(int(r[i] << 6 | r[i + 1] << 4 | r[i + 2] << 2 | r[i + 3]) for i in range(0, 16, 4)) for r in g2]
    files["grey2bit.png"] = write_bytes("grey2bit.png", raw_png(16, 9, 2, 0, packed))
    files["interlaced.png"] = write_bytes("interlaced.png", interlaced_png(photo_like(19, 13, phase=0.4)))
    files["wide.png"] = save("wide.png", photo_like(300, 7, phase=1.0))
    files["tall.png"] = save("tall.png", photo_like(5, 211, phase=2.0))
    files["big.png"] = save("big.png", photo_like(256, 192, phase=0.5))
    small = photo_like(13, 7, phase=0.3)
    for o in range(2, 9):
        files[f"exif{o}.png"] = save(f"exif{o}.png", small, exif=exif_with_orientation(o))
    files["photo.jpg"] = save("photo.jpg", photo_like(61, 37), quality=90)
    files["photo444.jpg"] = save("photo444.jpg", photo_like(29, 23, phase=0.2), quality=88, subsampling=0)
    files["photo422.jpg"] = save("photo422.jpg", photo_like(31, 19, phase=0.6), quality=75, subsampling=1)
    files["grey.jpg"] = save("grey.jpg", text, quality=85)
    files["progressive.jpg"] = save("progressive.jpg", photo_like(33, 29, phase=0.7), quality=80, progressive=True)
    files["cmyk.jpg"] = save("cmyk.jpg", photo_like(21, 15, phase=1.5).convert("CMYK"), quality=95)
    files["exif6.jpg"] = save("exif6.jpg", photo_like(24, 16, phase=0.9), quality=92, exif=exif_with_orientation(6))

    t = {}
    decoded = {}
    for name, path in sorted(files.items()):
        img = load_like_transformers(path)
        decoded[name] = img
        t[f"decoded.{name}"] = np.asarray(img, dtype=np.uint8)

    resizes = [("gradient.png", 28, 19), ("gradient.png", 131, 97), ("gradient.png", 40, 90), ("gradient.png", 1, 1),
               ("gradient.png", 67, 10), ("gradient.png", 20, 45), ("text.png", 56, 56), ("text.png", 300, 28),
               ("lines_rgba.png", 17, 13), ("lines_rgba.png", 112, 84), ("wide.png", 56, 28), ("wide.png", 30, 1),
               ("tall.png", 28, 112), ("photo.jpg", 84, 56), ("big.png", 160, 120), ("big.png", 75, 33),
               ("big.png", 448, 112), ("bilevel.png", 9, 29)]
    for name, w, h in resizes:
        t[f"resize.{name}.{w}x{h}"] = np.asarray(decoded[name].resize((w, h), Image.BICUBIC), dtype=np.uint8)

    # A sweep of random target sizes in all four quadrants (grow/shrink each side): it pins down the
    # order of the two passes PIL picks, which decides rounding of the 8-bit intermediate.
    rng = np.random.default_rng(SEED)
    for i in range(60):
        name = ["gradient.png", "lines_rgba.png", "text.png"][i % 3]
        src = decoded[name]
        w = int(rng.integers(1, int(src.width * 1.6) + 2))
        h = int(rng.integers(1, int(src.height * 1.6) + 2))
        key = f"resize.{name}.{w}x{h}"
        if key not in t and w * h <= 6000:      # keep the fixture small
            t[key] = np.asarray(src.resize((w, h), Image.BICUBIC), dtype=np.uint8)

    pipelines = [("gradient.png", 28, 6), ("text.png", 28, 12), ("wide.png", 28, 12), ("tall.png", 14, 12),
                 ("photo.jpg", 56, 4), ("big.png", 28, 12), ("exif6.jpg", 28, 1)]
    for name, tile, max_tiles in pipelines:
        (c, r), pv = pixel_values(decoded[name], tile, max_tiles)
        key = f"pixel_values.{name}.s{tile}.max{max_tiles}"
        t[key] = pv
        t[key + ".grid"] = np.array([c, r], dtype=np.int32)

    # The released tile size, 448, on a 256x192 image (a 4x3 grid + thumbnail = 13 tiles): too big to
    # store whole, so per-tile, per-channel sums (float64) and one full row (y = 223) of every tile.
    (c, r), pv = pixel_values(decoded["big.png"], 448, 12)
    t["pixel_values.big.png.s448.max12.grid"] = np.array([c, r], dtype=np.int32)
    t["pixel_values.big.png.s448.max12.sums"] = pv.astype(np.float64).sum(axis=(2, 3))
    t["pixel_values.big.png.s448.max12.row223"] = np.ascontiguousarray(pv[:, :, 223, :])

    write_fixture("imaging", t, generator="Fixtures/generate/imaging.py", seed=SEED, tolerance="exact",
                  notes="decoded.* and resize.* are uint8 (H, W, 3) from PIL; pixel_values.* float32 (N, 3, S, S) "
                        "with .grid = [columns, rows]; image files under files/")


if __name__ == "__main__":
    main()
