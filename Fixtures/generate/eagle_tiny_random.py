"""tiny-random: an Eagle 2.5 checkpoint with random weights and odd sizes, for exact parity between
Eaglet and the PyTorch reference (eagle_reference.py = transformers SiglipVisionModel + Qwen2ForCausalLM
+ pixel shuffle + mlp1 + splice).

Layout choices that exercise the loader's other branch than tiny-eagle does: vision keys under the
released prefix `vision_model.vision_model.`, config.json spelled as transformers 5.x writes it
(`rope_parameters`, `dtype`), tied word embeddings stored once as `embed_tokens`, F32 storage.

Writes Fixtures/tiny-random/ (the checkpoint + example.png) and Fixtures/eagle-tiny-random/ (goldens:
input_ids, pixel_values, vision_features, visual_tokens, logits, greedy tokens; text-only logits).
The weights are reseeded until the smallest top-1/top-2 logit gap over the greedy steps is >= 1e-3, so
token-for-token parity is never decided by rounding.

Run: python3 Fixtures/generate/eagle_tiny_random.py
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import Qwen2Config, SiglipVisionConfig

from eagle_reference import EagleReference, build_prompt, normalise, tile_image
from fixturelib import ROOT, write_fixture
from tiny_eagle import sample

OUT = os.path.join(ROOT, "Fixtures", "tiny-random")
TILE, PATCH, MIN_T, MAX_T = 28, 7, 1, 4
TPT = (TILE // PATCH) ** 2 // 4

tok = Tokenizer.from_file(os.path.join(ROOT, "Fixtures", "tiny-eagle", "tokenizer.json"))
iti = tok.token_to_id("<IMG_CONTEXT>")
stop = [tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")]
vision = SiglipVisionConfig(hidden_size=36, intermediate_size=47, num_hidden_layers=2, num_attention_heads=3,
                            image_size=TILE, patch_size=PATCH, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh",
                            vision_use_head=False)
text = Qwen2Config(vocab_size=tok.get_vocab_size(), hidden_size=40, intermediate_size=45, num_hidden_layers=2,
                   num_attention_heads=5, num_key_value_heads=1, max_position_embeddings=512, rms_norm_eps=1e-6,
                   tie_word_embeddings=True, rope_theta=10000.0, bos_token_id=0, eos_token_id=stop[0])

img, _, _, _ = sample(7)
img = img.resize((96, 60))  # an aspect ratio that gives a multi-tile grid plus thumbnail
question = "What color is the circle?"
tiles, grid = tile_image(img, TILE, MIN_T, MAX_T)
pixels = normalise(tiles)
prompt = build_prompt(question, [len(tiles) * TPT])
ids = tok.encode(prompt, add_special_tokens=False).ids
text_ids = tok.encode(build_prompt("Hello! How are you today?"), add_special_tokens=False).ids

for seed in range(100):
    torch.manual_seed(1000 + seed)
    model = EagleReference(vision, text, image_token_index=iti).eval()
    with torch.no_grad():
        for p in model.parameters():   # larger than init so logits are spread and gaps are wide
            p.normal_(0, 0.2) if p.dim() > 1 else p.normal_(0, 0.05)
        new, gap = model.greedy(torch.tensor(ids), pixels, 12, set())
    if gap >= 1e-3:
        break
print(f"seed {1000 + seed}: greedy {new}, min gap {gap:.4f}, grid {grid}, tiles {len(tiles)}")

with torch.no_grad():
    feats = model.vision_features(pixels)
    vis = model.visual_tokens(pixels)
    logits = model(torch.tensor([ids]), pixels)[0]
    text_logits = model(torch.tensor([text_ids]))[0]

# the checkpoint, released layout
os.makedirs(OUT, exist_ok=True)
state = {}
for k, v in model.state_dict().items():
    if k == "language_model.lm_head.weight":
        continue  # tied: stored once, as embed_tokens
    if k.startswith("vision_model.") and not k.startswith("vision_model.vision_model."):
        k = "vision_model.vision_model." + k[len("vision_model."):]
    state[k] = v.detach().clone().contiguous()
save_file(state, os.path.join(OUT, "model.safetensors"), metadata={"format": "pt"})
vd = {k: v for k, v in vision.to_dict().items() if not k.startswith("_")}
td = {k: v for k, v in text.to_dict().items() if not k.startswith("_")}
td["dtype"] = "float32"
vd["dtype"] = "float32"
cfg = {"architectures": ["Eagle2_5_VLForConditionalGeneration"], "model_type": "eagle_2_5_vl",
       "vision_config": vd, "text_config": td, "select_layer": -1, "force_image_size": TILE, "downsample_ratio": 0.5,
       "template": "qwen2-chat", "dynamic_image_size": True, "use_thumbnail": True, "min_dynamic_tiles": MIN_T,
       "max_dynamic_tiles": MAX_T, "use_pixel_shuffle": True, "mlp_connector_layers": 2, "image_token_index": iti,
       "tie_word_embeddings": True, "dtype": "float32", "transformers_version": "5.24.0"}
json.dump(cfg, open(os.path.join(OUT, "config.json"), "w"), indent=1)
json.dump({"eos_token_id": stop, "do_sample": False}, open(os.path.join(OUT, "generation_config.json"), "w"), indent=1)
json.dump({"size": {"height": TILE, "width": TILE}, "min_dynamic_tiles": MIN_T, "max_dynamic_tiles": MAX_T,
           "tokens_per_tile": TPT, "use_thumbnail": True, "image_mean": [0.5] * 3, "image_std": [0.5] * 3, "resample": 3},
          open(os.path.join(OUT, "preprocessor_config.json"), "w"), indent=1)
shutil.copy(os.path.join(ROOT, "Fixtures", "tiny-eagle", "tokenizer.json"), os.path.join(OUT, "tokenizer.json"))
img.save(os.path.join(OUT, "example.png"))

write_fixture("eagle-tiny-random", {
    "input_ids": torch.tensor(ids, dtype=torch.int64),
    "pixel_values": pixels,
    "vision_features": feats,
    "visual_tokens": vis,
    "logits": logits,
    "greedy_tokens": torch.tensor(new, dtype=torch.int64),
    "text_input_ids": torch.tensor(text_ids, dtype=torch.int64),
    "text_logits": text_logits,
}, generator="Fixtures/generate/eagle_tiny_random.py", seed=1000 + seed, tolerance="fp32-block",
    notes=f"question {question!r} about Fixtures/tiny-random/example.png; grid {grid}; greedy min top-1/top-2 gap {gap:.4f}",
    extra={"question": question, "grid": list(grid), "min_gap": gap, "max_new_tokens": 12})
