"""Tiny test videos for chapter 10 (module Video), made with the `ffmpeg` command (Debian's FFmpeg 5.1).

Every frame draws its own index: the top 16 rows hold 10 blocks of 8x16 pixels, block b (x = 8b .. 8b+7)
white (luma 235) when bit b of the frame number is set, else black (luma 16); chroma is neutral. Below,
a moving diagonal pattern keeps the encoders honest. A test reads pixel (8b + 4, 8) of a decoded frame
and gets its index back, so it can tell exactly which frame came out of the decoder.

Files (80x48, keyframe every 12 frames, fixed: -g 12 and no scene-cut keyframes, B-frames on):
  h264.mp4       H.264 (libx264, 2 B-frames), MP4: the container stores the frame count; 100 frames at 25 fps
  mpeg4.mkv      MPEG-4 Part 2 (2 B-frames, closed GOP off), Matroska: no frame count stored; 100 frames at 25 fps
  vp9.webm       VP9 (libvpx) in WebM: no frame count stored; 60 frames at 25 fps
  vfr.mkv        H.264 in Matroska at a variable rate: frames 0-49 every 40 ms, then 50-79 every 100 ms
  long_gop.mp4   H.264, 60 frames at 30 fps with a single keyframe (-g 1000): sparse decoding must walk
and broken ones: empty.mp4 (0 bytes), garbage.mp4 (random bytes), truncated.mp4 (h264.mp4 without its
index: the moov box sits at the end and the file is cut at 60 %), audio.mkv (a sine tone, no video).

Expected values (safetensors): per file the frame timestamps in seconds and keyframe indices, as computed
from the encoding parameters above (not read back with FFmpeg).

Run: python3 Fixtures/generate/test_videos.py   (writes Fixtures/test-videos/)
"""
import os
import random
import subprocess

import numpy as np

from fixturelib import ROOT, write_fixture

OUT = os.path.join(ROOT, "Fixtures", "test-videos")
W, H, GOP = 80, 48, 12
# geq: bit b of N (frame number) as block b in the top band; a diagonal pattern below.
LUMA = ("if(lt(Y,16),if(lt(X,80),if(bitand(floor(N/pow(2,floor(X/8))),1),235,16),16),"
        "16+mod(2*X+3*Y+4*N,200))")


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def source(frames, rate):
    return ["-f", "lavfi", "-i", f"color=c=black:s={W}x{H}:r={rate},format=yuv420p,geq=lum='{LUMA}':cb=128:cr=128",
            "-frames:v", str(frames)]


def main():
    os.makedirs(OUT, exist_ok=True)
    x264 = ["-c:v", "libx264", "-preset", "medium", "-crf", "16", "-g", str(GOP), "-keyint_min", str(GOP),
            "-sc_threshold", "0", "-bf", "2", "-pix_fmt", "yuv420p", "-bitexact"]
    ffmpeg(*source(100, 25), *x264, "-movflags", "+faststart", os.path.join(OUT, "h264.mp4"))
    ffmpeg(*source(100, 25), "-c:v", "mpeg4", "-q:v", "2", "-g", str(GOP), "-bf", "2", "-bitexact", os.path.join(OUT, "mpeg4.mkv"))
    # VP9 (libvpx, one thread) in WebM: no frame count stored; hidden alt-ref frames travel inside superframes.
    ffmpeg(*source(60, 25), "-c:v", "libvpx-vp9", "-crf", "20", "-b:v", "0", "-g", str(GOP), "-keyint_min", str(GOP),
           "-deadline", "good", "-cpu-used", "4", "-row-mt", "0", "-threads", "1", os.path.join(OUT, "vp9.webm"))
    # Variable frame rate: 40 ms for the first 50 frames, then 100 ms.
    # (Timestamps in whole milliseconds, and a millisecond encoder time base, so nothing is quantised to 1/25 s.)
    ffmpeg(*source(80, 25), "-vf", "settb=1/1000,setpts='if(lt(N,50),N*40,2000+(N-50)*100)'", "-fps_mode", "passthrough",
           "-enc_time_base", "1:1000", *x264, os.path.join(OUT, "vfr.mkv"))
    ffmpeg(*source(60, 30), *[a if a != str(GOP) else "1000" for a in x264], "-movflags", "+faststart",
           os.path.join(OUT, "long_gop.mp4"))

    # Broken inputs.
    open(os.path.join(OUT, "empty.mp4"), "wb").close()
    rng = random.Random(7)
    with open(os.path.join(OUT, "garbage.mp4"), "wb") as fh:
        fh.write(bytes(rng.randrange(256) for _ in range(3000)))
    tmp = os.path.join(OUT, "tmp_moov_at_end.mp4")
    ffmpeg(*source(100, 25), *x264, tmp)
    data = open(tmp, "rb").read()
    os.remove(tmp)
    with open(os.path.join(OUT, "truncated.mp4"), "wb") as fh:
        fh.write(data[: len(data) * 6 // 10])
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=0.3", "-c:a", "flac", os.path.join(OUT, "audio.mkv"))

    tensors = {
        "h264.timestamps": np.arange(100) * 0.04,
        "h264.keyframes": np.arange(0, 100, GOP),
        "mpeg4.timestamps": np.arange(100) * 0.04,
        "mpeg4.keyframes": np.arange(0, 100, GOP),
        "vp9.timestamps": np.arange(60) * 0.04,
        "vp9.keyframes": np.arange(0, 60, GOP),
        "vfr.timestamps": np.array([n * 0.04 if n < 50 else 2 + (n - 50) * 0.1 for n in range(80)]),
        "vfr.keyframes": np.arange(0, 80, GOP),
        "long_gop.timestamps": np.arange(60) / 30,
        "long_gop.keyframes": np.array([0]),
    }
    tensors = {k: v.astype(np.float64 if "timestamps" in k else np.int32) for k, v in tensors.items()}
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    write_fixture("test-videos", tensors, generator="Fixtures/generate/test_videos.py", seed=7, tolerance="exact",
                  notes=f"{W}x{H} videos whose frames draw their index in binary (top band, 10 blocks of 8x16); "
                        f"keyframe interval {GOP} (long_gop: 1 keyframe). Made with: {version}",
                  extra={"keyframe_interval": GOP, "ffmpeg": version,
                         "files": {"h264.mp4": {"codec": "h264", "frames": 100, "fps": 25, "frame_count_stored": True},
                                   "mpeg4.mkv": {"codec": "mpeg4", "frames": 100, "fps": 25, "frame_count_stored": False},
                                   "vp9.webm": {"codec": "vp9", "frames": 60, "fps": 25, "frame_count_stored": False},
                                   "vfr.mkv": {"codec": "h264", "frames": 80, "fps": "variable", "frame_count_stored": False},
                                   "long_gop.mp4": {"codec": "h264", "frames": 60, "fps": 30, "frame_count_stored": True}}})
    for name in sorted(os.listdir(OUT)):
        print(f"{name:16s} {os.path.getsize(os.path.join(OUT, name)):8d} bytes")


if __name__ == "__main__":
    main()
