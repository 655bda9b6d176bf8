"""Hostile image files for Tests/RobustnessTests (issue 23), made from the imaging fixtures so they stay small:

  ztxt-bomb.png   gradient.png with 300 zTXt chunks, each 1 MiB of zeros deflated to ~1 KB: 319 KB that inflate to
                  300 MiB if a decoder reads its text chunks (Eaglet's decoder skips them unread)
  scans-bomb.jpg  progressive.jpg with its last scan repeated 2000 times: a CPU-time bomb in the form of a
                  progressive JPEG with thousands of scans (Eaglet refuses more than 500)

Run: cd Fixtures/generate && python3 robustness_files.py   (writes Fixtures/robustness/)
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = os.path.join(HERE, "..", "imaging", "files")
OUT = os.path.join(HERE, "..", "robustness")


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def ztxt_bomb() -> bytes:
    png = open(os.path.join(FILES, "gradient.png"), "rb").read()
    sig, rest = png[:8], png[8:]
    n = struct.unpack(">I", rest[:4])[0]
    ihdr, after = rest[:12 + n], rest[12 + n:]
    payload = zlib.compress(b"\0" * (1 << 20), 9)
    return sig + ihdr + b"".join(chunk(b"zTXt", b"k%d\0\0" % i + payload) for i in range(300)) + after


def scans_bomb() -> bytes:
    j = open(os.path.join(FILES, "progressive.jpg"), "rb").read()
    i, scans, eoi = 2, [], None
    while i < len(j):
        if j[i] != 0xFF:
            i += 1
            continue
        m = j[i + 1]
        if m == 0xD9:
            eoi = i
            break
        if m == 0xFF:
            i += 1
            continue
        if m in (0x00, 0x01) or 0xD0 <= m <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", j[i + 2:i + 4])[0]
        if m == 0xDA:  # start of scan: header, then entropy-coded data up to the next marker
            k = i + 2 + length
            while not (j[k] == 0xFF and j[k + 1] != 0x00 and not 0xD0 <= j[k + 1] <= 0xD7):
                k += 1
            scans.append((i, k))
            i = k
        else:
            i += 2 + length
    a, b = scans[-1]
    return j[:eoi] + j[a:b] * 2000 + j[eoi:]


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, data in [("ztxt-bomb.png", ztxt_bomb()), ("scans-bomb.jpg", scans_bomb())]:
        open(os.path.join(OUT, name), "wb").write(data)
        print(f"wrote Fixtures/robustness/{name} ({len(data)} bytes)")
