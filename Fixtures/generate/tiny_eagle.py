"""tiny-eagle: a tiny Eagle 2.5 trained on a synthetic visual question-answering task, so that
`eaglet demo` answers a real question about a real image. Everything here is seeded.

The task (held-out accuracy = exact match of the answer's key word):
  images of 64-256 px a side (several aspect ratios, so IAP tiling matters) on a smooth two-colour
  gradient, with shapes of distinct kinds (circle, square, triangle, diamond) and distinct colours
  (red, green, blue, yellow, purple, orange). Three question kinds; counting scenes hold 1-3 shapes, the
  other kinds one shape. (A first version asked about one of up to four shapes, and also "What shape is
  red?"; the 1.3 M-parameter model, trained on 2 CPU cores once the GPU budget was spent, reached about
  50 % there and stayed at chance on shape names, so the task was simplified rather than the bar.)
    "What color is the circle?"      -> "The circle is red."          key: red
    "How many shapes are there?"     -> "There are three shapes."     key: three
    "Is the triangle on the left or on the right?" -> "The triangle is on the left."  key: left

Steps:
  python3 tiny_eagle.py tokenizer   # CPU: trains the byte-level BPE (Qwen2 pre-tokenizer) -> Fixtures/tiny-eagle/tokenizer.json
  python3 tiny_eagle.py train OUT   # GPU or CPU: trains, writes OUT/model.safetensors (+ configs)
  python3 tiny_eagle.py heldout     # CPU: writes Fixtures/tiny-eagle-heldout/ (PNG images + questions.json)
  python3 tiny_eagle.py jsonl OUT N [FIRST_SEED]   # the task as LLaVA-format JSONL for `eaglet train` / `eaglet eval`:
                                    # OUT/data.jsonl + OUT/NNNNNN.png, samples FIRST_SEED … (default 0; the held-out
                                    # set starts at 5 000 000), each {"id", "image", "type", "conversations"}
The script runs on the pinned CPU versions and on the GPU host's (PyTorch 2.11, transformers 5.x).

How the committed Fixtures/tiny-eagle weights were made (all on the CPU, fp32, this script):
  1. from scratch, on the first version of the task (one of up to four shapes asked about; also
     "What shape is blue?"): STEPS=1000 BATCH=96 N_SAMPLES=40000 LR=1e-3, stopped after 200 steps;
  2. INIT=<1> on the second version (counting scenes 1-4 shapes, other kinds one shape, shape names
     still asked): STEPS=700 BATCH=48 N_SAMPLES=20000 LR=1e-3 WARMUP=20 THREADS=1, stopped after 200 steps;
  3. INIT=<2> on this version: STEPS=550 BATCH=48 N_SAMPLES=16000 LR=1.5e-3 WARMUP=10 THREADS=1, to the end.
  Versions 1 and 2 differ from this file only in `sample` and `make_question` as described above. An
  earlier GPU run (bf16 autocast, LR=2e-3, batch 128) diverged to NaN near step 700 and was not used.
  `python3 tiny_eagle_goldens.py OUT_DIR` then imports the weights and writes every golden value.
"""
import json
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
CKPT = os.path.join(ROOT, "Fixtures", "tiny-eagle")

SHAPES = ["circle", "square", "triangle", "diamond"]
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 210, 40),
          "purple": (140, 60, 180), "orange": (240, 140, 30)}
NUMBERS = ["zero", "one", "two", "three", "four"]
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>"]
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

TILE, PATCH, MAX_TILES = 64, 8, 6
TOKENS_PER_TILE = (TILE // PATCH) ** 2 // 4


# ------------------------------------------------------------------ the synthetic task

def make_scene(rng: random.Random, n: int):
    """Returns (PIL image, list of n shapes) where a shape is dict(kind, color, cx, cy, size)."""
    import numpy as np
    from PIL import Image, ImageDraw
    w = rng.choice([64, 96, 128, 160, 192, 224, 256])
    h = rng.choice([64, 96, 128, 160, 192, 224, 256])
    grey = rng.randint(70, 210)  # muted backgrounds, so saturated shapes always stand out
    c0 = [min(255, max(0, grey + rng.randint(-20, 20))) for _ in range(3)]
    c1 = [min(255, max(0, v + rng.randint(-45, 45))) for v in c0]
    horizontal = rng.random() < 0.5
    t = np.linspace(0.0, 1.0, w if horizontal else h)
    ramp = np.array(c0, dtype=np.float64)[None, :] + (np.array(c1) - np.array(c0))[None, :] * t[:, None]
    ramp = ramp.astype(np.uint8)  # truncation, like int()
    arr = np.broadcast_to(ramp[None, :, :], (h, w, 3)) if horizontal else np.broadcast_to(ramp[:, None, :], (h, w, 3))
    img = Image.fromarray(np.ascontiguousarray(arr), "RGB")
    draw = ImageDraw.Draw(img)
    kinds = rng.sample(SHAPES, n)
    colors = rng.sample(list(COLORS), n)
    shapes, tries = [], 0
    side = min(w, h)
    while len(shapes) < n and tries < 500:
        tries += 1
        size = rng.uniform(0.22, 0.34) * side
        size = max(size, 14)
        cx, cy = rng.uniform(size / 2 + 2, w - size / 2 - 2), rng.uniform(size / 2 + 2, h - size / 2 - 2)
        if abs(cx - w / 2) < 0.15 * w:          # keep left/right unambiguous
            continue
        if any(math.hypot(cx - s["cx"], cy - s["cy"]) < (size + s["size"]) / 2 + 3 for s in shapes):
            continue
        shapes.append(dict(kind=kinds[len(shapes)], color=colors[len(shapes)], cx=cx, cy=cy, size=size))
    for s in shapes:
        r, col = s["size"] / 2, COLORS[s["color"]]
        x, y = s["cx"], s["cy"]
        if s["kind"] == "circle":
            draw.ellipse([x - r, y - r, x + r, y + r], fill=col)
        elif s["kind"] == "square":
            draw.rectangle([x - r * 0.85, y - r * 0.85, x + r * 0.85, y + r * 0.85], fill=col)
        elif s["kind"] == "triangle":
            draw.polygon([(x, y - r), (x - r, y + r * 0.8), (x + r, y + r * 0.8)], fill=col)
        else:
            draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=col)
    return img, shapes


def make_question(rng: random.Random, img, shapes, kind):
    """(question, answer, key word) of `kind` about the scene."""
    s = rng.choice(shapes)
    if kind == "color":
        return f"What color is the {s['kind']}?", f"The {s['kind']} is {s['color']}.", s["color"]
    if kind == "count":
        n = len(shapes)
        ans = "There is one shape." if n == 1 else f"There are {NUMBERS[n]} shapes."
        return "How many shapes are there?", ans, NUMBERS[n]
    side = "left" if s["cx"] < img.width / 2 else "right"
    return (f"Is the {s['kind']} on the left or on the right?", f"The {s['kind']} is on the {side}.", side)


def sample(seed: int):
    rng = random.Random(seed)
    kind = rng.choice(["color", "count", "side"])
    img, shapes = make_scene(rng, rng.randint(1, 3) if kind == "count" else 1)
    q, a, key = make_question(rng, img, shapes, kind)
    return img, q, a, key


def corpus_texts():
    """Every text the task can produce, for training the tokenizer."""
    from eagle_reference import SYSTEM_PROMPT
    texts = [SYSTEM_PROMPT, "system\n", "user\n", "assistant\n", "<image 1>", "<image 2>", "\n"]
    for s in SHAPES:
        texts.append(f"Is the {s} on the left or on the right?")
        for side in ("left", "right"):
            texts.append(f"The {s} is on the {side}.")
        texts.append(f"What color is the {s}?")
        for c in COLORS:
            texts += [f"The {s} is {c}.", f"What shape is {c}?", f"The {c} shape is a {s}."]
    texts += ["How many shapes are there?", "There is one shape."] + [f"There are {n} shapes." for n in NUMBERS[2:]]
    # a little general English so that other prompts tokenise sensibly
    texts += ["Describe the image.", "What is in the picture?", "Hello! How are you today?",
              "The quick brown fox jumps over the lazy dog.", "Count the objects, then answer in one sentence."]
    return texts


# ------------------------------------------------------------------ tokenizer

def train_tokenizer(path):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    texts = corpus_texts()
    tok.train_from_iterator(texts * 20, trainer)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tok.save(path)
    print(f"tokenizer: {tok.get_vocab_size()} tokens -> {path}")


# ------------------------------------------------------------------ configs

def configs(vocab_size):
    from transformers import Qwen2Config, SiglipVisionConfig
    vision = SiglipVisionConfig(hidden_size=96, intermediate_size=240, num_hidden_layers=4, num_attention_heads=4,
                                image_size=TILE, patch_size=PATCH, num_channels=3, layer_norm_eps=1e-6,
                                hidden_act="gelu_pytorch_tanh", vision_use_head=False)
    text = Qwen2Config(vocab_size=vocab_size, hidden_size=128, intermediate_size=352, num_hidden_layers=4,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                       rms_norm_eps=1e-6, tie_word_embeddings=False, hidden_act="silu",
                       bos_token_id=0, eos_token_id=2, rope_theta=10000.0)
    return vision, text


def eagle_config_json(vision, text, image_token_index, dtype="bfloat16"):
    """config.json in the released Eagle 2.5 layout, spelled as transformers 4.x wrote it."""
    td = {k: v for k, v in text.to_dict().items() if not k.startswith("_")}
    rp = td.pop("rope_parameters", None) or {}
    td["rope_theta"] = rp.get("rope_theta", td.get("rope_theta", 10000.0))
    td.pop("dtype", None)
    td["torch_dtype"] = dtype
    td["architectures"] = ["Qwen2ForCausalLM"]
    td["model_type"] = "qwen2"
    vd = {k: v for k, v in vision.to_dict().items() if not k.startswith("_")}
    vd.pop("dtype", None)
    vd["model_type"] = "siglip_vision_model"
    return {
        "architectures": ["Eagle2_5_VLForConditionalGeneration"], "model_type": "eagle_2_5_vl",
        "vision_config": vd, "text_config": td, "select_layer": -1, "force_image_size": TILE,
        "downsample_ratio": 0.5, "template": "qwen2-chat", "dynamic_image_size": True, "use_thumbnail": True,
        "min_dynamic_tiles": 1, "max_dynamic_tiles": MAX_TILES, "pad2square": False, "use_pixel_shuffle": True,
        "mlp_connector_layers": 2, "image_token_index": image_token_index, "tie_word_embeddings": False,
        "torch_dtype": dtype, "transformers_version": "4.51.0",
    }


def write_side_files(folder, tok, image_token_index):
    json.dump({"eos_token_id": [tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")],
               "pad_token_id": tok.token_to_id("<|endoftext|>"), "do_sample": False, "max_new_tokens": 32},
              open(os.path.join(folder, "generation_config.json"), "w"), indent=1)
    json.dump({"image_processor_type": "Eagle2_5_VLImageProcessorFast", "size": {"height": TILE, "width": TILE},
               "do_resize": False, "min_dynamic_tiles": 1, "max_dynamic_tiles": MAX_TILES,
               "tokens_per_tile": TOKENS_PER_TILE, "use_thumbnail": True, "image_mean": [0.5, 0.5, 0.5],
               "image_std": [0.5, 0.5, 0.5], "do_pad": False, "resample": 3},
              open(os.path.join(folder, "preprocessor_config.json"), "w"), indent=1)


# ------------------------------------------------------------------ training

def encode_sample(tok, seed, image_token_index):
    from eagle_reference import build_prompt, normalise, tile_image
    img, q, a, key = sample(seed)
    tiles, _ = tile_image(img, TILE, 1, MAX_TILES)
    prompt = build_prompt(q, [len(tiles) * TOKENS_PER_TILE])
    p_ids = tok.encode(prompt, add_special_tokens=False).ids
    a_ids = tok.encode(a + "<|im_end|>", add_special_tokens=False).ids
    return normalise(tiles), p_ids, a_ids


def _worker(args):
    start, count = args
    import torch
    torch.set_num_threads(1)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(CKPT, "tokenizer.json"))
    iti = tok.token_to_id("<IMG_CONTEXT>")
    # numpy, not torch tensors: torch's pickling passes file descriptors between processes, which some
    # sandboxes refuse ("received 0 items of ancdata").
    return [(pix.numpy(), p, a) for pix, p, a in (encode_sample(tok, s, iti) for s in range(start, start + count))]


def train(out_dir, steps=3000, batch=128, n_samples=60000, lr=1e-3):
    n_samples = int(os.environ.get("N_SAMPLES", n_samples))
    batch = int(os.environ.get("BATCH", batch))
    lr = float(os.environ.get("LR", lr))
    import multiprocessing as mp
    import time

    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer

    from eagle_reference import EagleReference

    torch.manual_seed(0)
    if os.environ.get("THREADS"):
        torch.set_num_threads(int(os.environ["THREADS"]))
    tok = Tokenizer.from_file(os.path.join(CKPT, "tokenizer.json"))
    iti, pad = tok.token_to_id("<IMG_CONTEXT>"), tok.token_to_id("<|endoftext|>")
    # Data first, in forked workers, before CUDA is initialised (forking after CUDA init can hang).
    t0 = time.time()
    chunk = 500
    with mp.get_context("fork").Pool(max(1, min(16, os.cpu_count() or 1))) as pool:
        parts = pool.map(_worker, [(1_000_000 + s, chunk) for s in range(0, n_samples, chunk)])
    data = [(torch.from_numpy(pix), p, a) for part in parts for pix, p, a in part]
    print(f"data: {len(data)} samples in {time.time() - t0:.0f} s", flush=True)

    dev = "cuda" if os.environ.get("DEVICE", "cuda") == "cuda" and torch.cuda.is_available() else "cpu"
    vision, text = configs(tok.get_vocab_size())
    model = EagleReference(vision, text, image_token_index=iti)
    if os.environ.get("INIT"):  # warm start from an earlier checkpoint of this script (BF16, widened)
        from safetensors.torch import load_file
        model.load_state_dict({k: v.float() for k, v in load_file(os.environ["INIT"]).items()}, strict=True)
        print(f"initialised from {os.environ['INIT']}", flush=True)
    model = model.to(dev)
    print(f"params: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M on {dev}", flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / int(os.environ.get("WARMUP", "100"))) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    g = torch.Generator().manual_seed(1)
    model.train()
    for step in range(steps):
        idx = torch.randint(len(data), (batch,), generator=g).tolist()
        pix = torch.cat([data[i][0] for i in idx]).to(dev)
        seqs = [data[i][1] + data[i][2] for i in idx]
        T = max(len(s) for s in seqs)
        ids = torch.full((batch, T), pad, dtype=torch.long)
        labels = torch.full((batch, T), -100, dtype=torch.long)
        att = torch.zeros((batch, T), dtype=torch.long)
        for b, i in enumerate(idx):
            p, a = data[i][1], data[i][2]
            ids[b, :len(p) + len(a)] = torch.tensor(p + a)
            labels[b, len(p) - 1:len(p) + len(a) - 1] = torch.tensor(a)   # predict a from the position before
            att[b, :len(p) + len(a)] = 1
        ids, labels, att = ids.to(dev), labels.to(dev), att.to(dev)
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == "cuda"):
            logits = model(ids, pix, attention_mask=att)
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                 ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            print(f"step {step}: non-finite loss, step skipped", flush=True)
            continue
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 200 == 0 or step == steps - 1:
            print(f"step {step} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
        if step > 0 and step % int(os.environ.get("SAVE_EVERY", "1000000")) == 0:
            save(model, tok, vision, text, iti, out_dir)
            print(f"saved at step {step}", flush=True)
        if time.time() - t0 > float(os.environ.get("TRAIN_SECONDS", "1e9")):
            print(f"time budget reached at step {step}", flush=True)
            break

    model.eval().cpu()
    save(model, tok, vision, text, iti, out_dir)
    # quick accuracy on fresh samples with the trained weights (bf16-rounded), for the log
    acc = quick_accuracy(model, tok, iti, range(2_000_000, 2_000_200))
    print(f"quick held-out accuracy (200, fp32 on CPU): {acc:.3f}", flush=True)


def save(model, tok, vision, text, iti, out_dir):
    """Writes OUT_DIR/model.safetensors (BF16) and the config files of the Eagle 2.5 layout."""
    import torch
    from safetensors.torch import save_file
    os.makedirs(out_dir, exist_ok=True)
    state = {k: v.detach().cpu().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    json.dump(eagle_config_json(vision, text, iti), open(os.path.join(out_dir, "config.json"), "w"), indent=1)
    write_side_files(out_dir, tok, iti)


def load_checkpoint(folder):
    """EagleReference with the weights of FOLDER (BF16 widened to fp32), and the tokenizer."""
    import torch
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    from eagle_reference import EagleReference
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    iti = tok.token_to_id("<IMG_CONTEXT>")
    vision, text = configs(tok.get_vocab_size())
    model = EagleReference(vision, text, image_token_index=iti)
    state = {k: v.float() for k, v in load_file(os.path.join(folder, "model.safetensors")).items()}
    model.load_state_dict(state, strict=True)
    return model.eval(), tok, iti


def answer(model, tok, iti, img, q, max_new=16):
    from eagle_reference import build_prompt, normalise, tile_image
    import torch
    tiles, _ = tile_image(img, TILE, 1, MAX_TILES)
    ids = tok.encode(build_prompt(q, [len(tiles) * TOKENS_PER_TILE]), add_special_tokens=False).ids
    stop = {tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")}
    new, gap = model.greedy(torch.tensor(ids), normalise(tiles), max_new, stop)
    return new, gap, tok.decode([t for t in new if t not in stop])


def key_word_correct(text, key):
    return key in text.lower().replace(".", " ").split()


def quick_accuracy(model, tok, iti, seeds):
    ok = 0
    for s in seeds:
        img, q, a, key = sample(s)
        _, _, text = answer(model, tok, iti, img, q)
        ok += key_word_correct(text, key)
    return ok / len(list(seeds))


def write_jsonl(out, n, first=0):
    """The task's samples `first` … `first + n − 1` as images and one JSONL file (Eaglet's training format)."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "data.jsonl"), "w") as fh:
        for k in range(n):
            seed = first + k
            rng = random.Random(seed)
            kind = rng.choice(["color", "count", "side"])
            img, q, a, key = sample(seed)
            name = f"{seed:07d}.png"
            img.save(os.path.join(out, name))
            fh.write(json.dumps({"id": str(seed), "image": name, "type": kind, "conversations": [
                {"from": "human", "value": "<image>\n" + q}, {"from": "gpt", "value": a}]}) + "\n")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "jsonl":
        write_jsonl(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 0)
        raise SystemExit(0)
    if cmd == "tokenizer":
        train_tokenizer(os.path.join(CKPT, "tokenizer.json"))
    elif cmd == "train":
        train(sys.argv[2], steps=int(os.environ.get("STEPS", 3000)))
    else:
        raise SystemExit(__doc__)
