"""HF tokenizers twin of `eaglet-bench tokenizer`: writes the benchmark text, and times HF's encode on it.

  python3 Fixtures/generate/bench_tokenizer.py text --out /tmp/x.txt --mb 4
  python3 Fixtures/generate/bench_tokenizer.py hf --tokenizer T.json --text /tmp/x.txt --repeats 3 --label tiny

`hf` splits the file on "\n" and encodes the lines with `encode_batch(lines, add_special_tokens=False)`,
single-threaded (RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false), after one warm-up pass, and prints one
JSON line in eaglet-bench's BenchResult format (rate in MB/s of UTF-8 input; size says bytes and ids, which
must equal Eaglet's). One `encode` of the whole file would be slower for HF (its offset tracking grows with
the input), so lines are the fair comparison.
"""
import os

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

from tokenizer_corpus import bench_text  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["text", "hf"])
    p.add_argument("--out")
    p.add_argument("--mb", type=float, default=4)
    p.add_argument("--tokenizer")
    p.add_argument("--text")
    p.add_argument("--label", default="")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    if a.what == "text":
        with open(a.out, "w", encoding="utf-8", newline="") as fh:
            fh.write(bench_text(target_bytes=int(a.mb * (1 << 20))))
        return
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(a.tokenizer)
    with open(a.text, encoding="utf-8", newline="") as fh:
        text = fh.read()
    nbytes = len(text.encode("utf-8"))
    lines = text.split("\n")
    n_ids = sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False))  # warm-up
    ts = []
    for _ in range(max(a.repeats, 1)):
        t0 = time.perf_counter()
        tok.encode_batch(lines, add_special_tokens=False)
        ts.append(time.perf_counter() - t0)
    ts.sort()
    t = ts[len(ts) // 2]
    print(json.dumps(dict(name="tokenizer", variant=f"hf:{a.label}", size=f"{nbytes}B/{n_ids}ids", threads=1,
                          medianSeconds=t, rate=nbytes / t / 1e6, unit="MB/s",
                          peakRSSBytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)))


if __name__ == "__main__":
    main()
