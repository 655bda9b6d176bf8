"""Golden values for the trained tiny-eagle checkpoint, computed on the CPU with the pinned versions
from the committed weights (BF16, widened to fp32):

* Fixtures/tiny-eagle/demo.png + demo.json: the image and question `eaglet demo` shows.
* Fixtures/tiny-eagle-heldout/: 500 held-out questions (seeds never used in training) as PNG images and
  heldout.json with, per question, the expected key word and the PyTorch reference's greedy answer
  (tokens and text); plus the reference's accuracy.
* Fixtures/eagle-tiny-eagle/: input ids, pixel_values, logits and greedy tokens for the demo question.

Run: python3 Fixtures/generate/tiny_eagle_goldens.py [CHECKPOINT_DIR_TO_IMPORT]
  (with an argument, first copies model.safetensors and the config files from that folder, e.g. the
  output of `tiny_eagle.py train`, into Fixtures/tiny-eagle/)
"""
import json
import os
import shutil
import sys

import torch

from eagle_reference import build_prompt, normalise, tile_image
from fixturelib import ROOT, write_fixture
from tiny_eagle import CKPT, MAX_TILES, TILE, TOKENS_PER_TILE, answer, key_word_correct, load_checkpoint, sample

HELDOUT = os.path.join(ROOT, "Fixtures", "tiny-eagle-heldout")
N_HELDOUT = 500
HELDOUT_SEED = 5_000_000
DEMO_SEED = 4_000_040  # "How many shapes are there?" on a 256×160 scene: a 3×2 grid + thumbnail

if len(sys.argv) > 1:
    for f in ("model.safetensors", "config.json", "generation_config.json", "preprocessor_config.json"):
        shutil.copy(os.path.join(sys.argv[1], f), os.path.join(CKPT, f))

torch.manual_seed(0)
model, tok, iti = load_checkpoint(CKPT)
stop = {tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")}

# the demo
img, q, a, key = sample(DEMO_SEED)
img.save(os.path.join(CKPT, "demo.png"))
json.dump({"question": q, "expected": a, "key": key}, open(os.path.join(CKPT, "demo.json"), "w"), indent=1)
tiles, grid = tile_image(img, TILE, 1, MAX_TILES)
pixels = normalise(tiles)
ids = tok.encode(build_prompt(q, [len(tiles) * TOKENS_PER_TILE]), add_special_tokens=False).ids
with torch.no_grad():
    logits = model(torch.tensor([ids]), pixels)[0]
new, gap, text = answer(model, tok, iti, img, q)
print(f"demo: {q} -> {text!r} (expected {a!r}), grid {grid}, gap {gap:.4f}")

# held-out questions
os.makedirs(HELDOUT, exist_ok=True)
rows, correct, min_gap = [], 0, float("inf")
for i in range(N_HELDOUT):
    im, qq, aa, kk = sample(HELDOUT_SEED + i)
    name = f"{i:03d}.png"
    im.save(os.path.join(HELDOUT, name))
    toks, g, txt = answer(model, tok, iti, im, qq)
    ok = key_word_correct(txt, kk)
    correct += ok
    min_gap = min(min_gap, g)
    rows.append({"image": name, "question": qq, "key": kk, "expected": aa, "reference_tokens": toks,
                 "reference_text": txt, "reference_correct": bool(ok), "min_gap": round(g, 6)})
acc = correct / N_HELDOUT
print(f"held-out accuracy of the PyTorch reference: {acc:.3f} ({correct}/{N_HELDOUT}); smallest greedy gap {min_gap:.5f}")
json.dump({"seed_start": HELDOUT_SEED, "count": N_HELDOUT, "reference_accuracy": acc, "max_new_tokens": 16,
           "questions": rows}, open(os.path.join(HELDOUT, "heldout.json"), "w"), indent=0)

write_fixture("eagle-tiny-eagle", {
    "input_ids": torch.tensor(ids, dtype=torch.int64),
    "pixel_values": pixels,
    "logits": logits,
    "greedy_tokens": torch.tensor(new, dtype=torch.int64),
}, generator="Fixtures/generate/tiny_eagle_goldens.py", seed=DEMO_SEED, tolerance="fp32-block",
    notes=f"demo question {q!r} on Fixtures/tiny-eagle/demo.png; reference held-out accuracy {acc:.3f}",
    extra={"question": q, "grid": list(grid), "min_gap": gap, "reference_heldout_accuracy": acc})
