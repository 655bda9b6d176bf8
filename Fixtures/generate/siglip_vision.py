"""Golden values for the vision tower (issue 3): PatchEmbed and SigLIP2 against transformers.

Writes three fixtures:
  siglip-vision-tiny    transformers SiglipVisionModel (fixed resolution, what Eagle 2.5 runs), two tiny
                        configs with odd widths (hidden 36, 3 heads, MLP 47, 2 layers): 84 px / patch 14
                        and 96 px / patch 16 (6×6 patch grids). Stores the full state dict under the
                        transformers 5.x key names (`vision_model.…`, `head.*` included), the config as
                        JSON, the pixels, every hidden state (0 = embeddings) and the post-LN output.
  siglip2-naflex-tiny   transformers Siglip2VisionModel (NaFlex): a 4×4 position table, two images of
                        (3, 5) and (6, 2) patches padded to 15; stores the resized position tables (the
                        model's own and F.interpolate's, checked equal here), every hidden state and the
                        post-LN output.
  siglip-so400m-layer   one SiglipEncoderLayer at So400m width (1152, 16 heads, MLP 4304) on 1024 tokens,
                        weights from fixturelib.seeded (Swift Tensor.seeded regenerates them); stores only
                        output rows, a column and statistics.

Run: cd Fixtures/generate && python3 siglip_vision.py
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from transformers import SiglipVisionConfig, SiglipVisionModel, Siglip2VisionConfig, Siglip2VisionModel
from transformers.models.siglip.modeling_siglip import SiglipEncoderLayer

from fixturelib import ROOT, seeded, write_fixture

GEN = "Fixtures/generate/siglip_vision.py"
torch.set_num_threads(1)


def randomise(model, seed):
    """Replaces every parameter by N(0, 1)·scale so no init symmetry hides a transposed index."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or "layernorm" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
            elif "position_embedding" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1] if p.dim() > 1 else 4
                if p.dim() == 4:
                    fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)


def tiny_fixed():
    tensors, configs = {}, {}
    for tag, (image, patch, seed) in {"p14": (84, 14, 10), "p16": (96, 16, 20)}.items():
        cfg = SiglipVisionConfig(hidden_size=36, intermediate_size=47, num_hidden_layers=2, num_attention_heads=3,
                                 image_size=image, patch_size=patch, num_channels=3, layer_norm_eps=1e-6,
                                 hidden_act="gelu_pytorch_tanh", attn_implementation="eager")
        torch.manual_seed(seed)
        model = SiglipVisionModel(cfg).eval()
        randomise(model, seed)
        pixels = torch.rand(2, 3, image, image, generator=torch.Generator().manual_seed(seed + 1)) * 2 - 1
        with torch.no_grad():
            out = model(pixel_values=pixels, output_hidden_states=True)
        for k, v in model.state_dict().items():
            tensors[f"{tag}.vision_model.{k}"] = v  # an Eagle checkpoint as transformers 5.x writes it
        tensors[f"{tag}.pixel_values"] = pixels
        for i, h in enumerate(out.hidden_states):
            tensors[f"{tag}.hidden_states.{i}"] = h
        tensors[f"{tag}.last_hidden_state"] = out.last_hidden_state
        # The conv alone, for the patch-embedding tests.
        with torch.no_grad():
            conv = model.embeddings.patch_embedding(pixels).flatten(2).transpose(1, 2)
        tensors[f"{tag}.patch_embeds"] = conv
        d = cfg.to_dict()
        configs[tag] = d
        with open(os.path.join(ROOT, "Fixtures", "siglip-vision-tiny", f"config_{tag}.json"), "w") as fh:
            json.dump({"model_type": "eagle_2_5_vl", "vision_config": d}, fh, indent=1, sort_keys=True)
            fh.write("\n")
    write_fixture("siglip-vision-tiny", tensors, generator=GEN, seed=[10, 20], tolerance="fp32-block",
                  notes="SiglipVisionModel, eager attention, fp32, batch 2. Keys '<tag>.vision_model.<state dict key>' are the "
                        "weights under transformers 5.x names; hidden_states.0 = embeddings; config_<tag>.json "
                        "wrap config.to_dict() as an Eagle-style vision_config.",
                  extra={"configs": configs})


def tiny_naflex():
    cfg = Siglip2VisionConfig(hidden_size=36, intermediate_size=47, num_hidden_layers=2, num_attention_heads=3,
                              num_channels=3, patch_size=4, num_patches=16, layer_norm_eps=1e-6,
                              hidden_act="gelu_pytorch_tanh", attn_implementation="eager")
    torch.manual_seed(30)
    model = Siglip2VisionModel(cfg).eval()
    randomise(model, 30)
    shapes = torch.tensor([[3, 5], [6, 2]])
    max_len = 15
    g = torch.Generator().manual_seed(31)
    pixels = torch.rand(2, max_len, 3 * 4 * 4, generator=g) * 2 - 1
    mask = torch.zeros(2, max_len, dtype=torch.long)
    for b, (h, w) in enumerate(shapes.tolist()):
        mask[b, : h * w] = 1
        pixels[b, h * w:] = 0
    with torch.no_grad():
        out = model(pixel_values=pixels, pixel_attention_mask=mask, spatial_shapes=shapes, output_hidden_states=True)
        emb = model.embeddings
        table = emb.position_embedding.weight.reshape(4, 4, -1)
        resized = emb.resize_positional_embeddings(table, shapes, max_len)
    tensors = {f"vision_model.{k}": v for k, v in model.state_dict().items()}
    tensors["pixel_values"] = pixels
    tensors["pixel_attention_mask"] = mask.to(torch.int64)
    tensors["spatial_shapes"] = shapes.to(torch.int64)
    worst = 0.0
    for b, (h, w) in enumerate(shapes.tolist()):
        # The independent reference: F.interpolate with the options the brief names.
        ref = F.interpolate(table.permute(2, 0, 1)[None], size=(h, w), mode="bilinear", align_corners=False,
                            antialias=True)[0].permute(1, 2, 0).reshape(h * w, -1)
        worst = max(worst, (ref - resized[b, : h * w]).abs().max().item())
        tensors[f"resized_positions.{b}"] = ref
        tensors[f"resized_positions_model.{b}"] = resized[b]
    assert worst < 1e-5, worst
    for i, h in enumerate(out.hidden_states):
        tensors[f"hidden_states.{i}"] = h
    tensors["last_hidden_state"] = out.last_hidden_state
    write_fixture("siglip2-naflex-tiny", tensors, generator=GEN, seed=30, tolerance="fp32-block",
                  notes="Siglip2VisionModel (NaFlex), patch 4, 4x4 position table, spatial shapes (3,5),(6,2) "
                        "padded to 15. resized_positions.b = F.interpolate(bilinear, align_corners=False, "
                        f"antialias=True) of the table (max diff to the model's own resize {worst:.2e}); "
                        "rows past h*w of hidden states are padding and are not compared.",
                  extra={"config": cfg.to_dict()})


def so400m_layer():
    c, heads, mlp, t = 1152, 16, 4304, 1024
    cfg = SiglipVisionConfig(hidden_size=c, intermediate_size=mlp, num_attention_heads=heads, layer_norm_eps=1e-6,
                             hidden_act="gelu_pytorch_tanh", attn_implementation="eager")
    layer = SiglipEncoderLayer(cfg).eval()
    # Seeds and scales: SigLIP2MatchesTransformers.so400mLayer() (Swift) and Chapter 04 regenerate exactly these.
    spec = {
        "self_attn.q_proj.weight": ([c, c], 101, 0.03), "self_attn.q_proj.bias": ([c], 102, 0.02),
        "self_attn.k_proj.weight": ([c, c], 103, 0.03), "self_attn.k_proj.bias": ([c], 104, 0.02),
        "self_attn.v_proj.weight": ([c, c], 105, 0.03), "self_attn.v_proj.bias": ([c], 106, 0.02),
        "self_attn.out_proj.weight": ([c, c], 107, 0.03), "self_attn.out_proj.bias": ([c], 108, 0.02),
        "layer_norm1.weight": ([c], 109, 0.1), "layer_norm1.bias": ([c], 110, 0.1),
        "layer_norm2.weight": ([c], 111, 0.1), "layer_norm2.bias": ([c], 112, 0.1),
        "mlp.fc1.weight": ([mlp, c], 113, 0.03), "mlp.fc1.bias": ([mlp], 114, 0.02),
        "mlp.fc2.weight": ([c, mlp], 115, 0.015), "mlp.fc2.bias": ([c], 116, 0.02),
    }
    sd = {}
    for k, (shape, seed, scale) in spec.items():
        w = seeded(shape, seed, scale)
        if k.startswith("layer_norm") and k.endswith("weight"):
            w = (w + np.float32(1)).astype(np.float32)  # LayerNorm weights 1 + seeded(…, 0.1)
        sd[k] = torch.from_numpy(w)
    layer.load_state_dict(sd)
    x = torch.from_numpy(seeded([1, t, c], 100, 1.0))
    with torch.no_grad():
        y = layer(x, attention_mask=None)
        y = y[0] if isinstance(y, tuple) else y
    y = y[0]
    rows = [0, 1, 511, 1023]
    tensors = {f"output.row{r}": y[r] for r in rows}
    tensors["output.col7"] = y[:, 7]
    tensors["output.mean_abs_std"] = torch.tensor([y.mean().item(), y.abs().mean().item(), y.std().item()],
                                                  dtype=torch.float32)
    write_fixture("siglip-so400m-layer", tensors, generator=GEN, seed=100, tolerance="fp32-block",
                  notes="SiglipEncoderLayer at So400m width on 1024 tokens. Input = seeded([1,1024,1152], 100, 1.0); "
                        "weights = seeded(shape, seed, scale) per 'weights' (LayerNorm weights get +1). "
                        "Stores output rows 0, 1, 511, 1023, column 7 and [mean, mean |y|, std].",
                  extra={"weights": {k: {"shape": s, "seed": sd_, "scale": sc} for k, (s, sd_, sc) in spec.items()}})


if __name__ == "__main__":
    os.makedirs(os.path.join(ROOT, "Fixtures", "siglip-vision-tiny"), exist_ok=True)
    tiny_fixed()
    tiny_naflex()
    so400m_layer()
