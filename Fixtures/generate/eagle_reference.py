"""A PyTorch reference of the whole Eagle 2.5 forward, written from the spec
(docs/spec.md §1, §3, §4, §5, §7), on top of transformers' SiglipVisionModel
and Qwen2ForCausalLM. It is what writes the end-to-end golden values and what trains the tiny checkpoint.

Pieces (spec section):
* iap_grid / tile_image (1.2-1.5): Image Area Preservation grid, bicubic resize (PIL), row-major cut,
  thumbnail only when the grid has more than one tile; normalise x/255, (x-0.5)/0.5.
* pixel_shuffle (4.1): scale 0.5, "v2" order.
* EagleReference (4.2, 5.3, 7.2): vision_model (SiglipVisionModel) -> select_layer -> pixel_shuffle
  -> mlp1 (LayerNorm eps 1e-5, Linear, exact GELU, Linear) -> overwrite <IMG_CONTEXT> rows of the text
  embeddings -> language_model (Qwen2ForCausalLM). Module names give the released checkpoint's keys:
  vision_model.vision_model.*, mlp1.{0,1,3}.*, language_model.model.*, language_model.lm_head.weight.
* build_prompt (5.4, 5.3): ChatML with the default system prompt and <image N><img>...</img>.
"""
import math

import torch
import torch.nn as nn
from PIL import Image

SYSTEM_PROMPT = "You are a helpful assistant."


# ---------------------------------------------------------------- tiling (docs/spec.md §1)

def candidate_grids(min_num: int, max_num: int):
    """(cols, rows) with min <= cols*rows <= max, by tile count, then fewer columns first."""
    out = [(c, r) for n in range(min_num, max_num + 1) for c in range(1, n + 1) for r in range(1, n + 1)
           if c * r == n]
    return sorted(out, key=lambda g: (g[0] * g[1], g[0]))


def iap_grid(width: int, height: int, min_num: int = 1, max_num: int = 12, tile: int = 448):
    """Eq. 1: score = min(A_new/A_orig, 0.6) * min(r_t/r, r/r_t); the first best (smaller grid) wins."""
    r = width / height
    area = width * height
    best, best_score = (1, 1), -1.0
    for c, rr in candidate_grids(min_num, max_num):
        rt = c / rr
        score = min(c * rr * tile * tile / area, 0.6) * min(rt / r, r / rt)
        if score > best_score:
            best, best_score = (c, rr), score
    return best


def tile_image(img: Image.Image, tile: int, min_num: int, max_num: int, use_thumbnail: bool = True):
    """PIL tiles: the grid tiles row-major, then the thumbnail when the grid has more than one tile."""
    img = img.convert("RGB")
    c, r = iap_grid(img.width, img.height, min_num, max_num, tile)
    big = img.resize((c * tile, r * tile), Image.BICUBIC)
    tiles = [big.crop(((k % c) * tile, (k // c) * tile, (k % c + 1) * tile, (k // c + 1) * tile)) for k in range(c * r)]
    if use_thumbnail and len(tiles) > 1:
        tiles.append(img.resize((tile, tile), Image.BICUBIC))
    return tiles, (c, r)


def normalise(tiles) -> torch.Tensor:
    """(N, 3, S, S) float32: x/255, then (x - 0.5)/0.5 per channel (SigLIP)."""
    import numpy as np
    arr = torch.from_numpy(np.stack([np.asarray(t, dtype=np.uint8) for t in tiles])).float()
    return ((arr / 255.0 - 0.5) / 0.5).permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------- connector (docs/spec.md §4)

def pixel_shuffle(x: torch.Tensor, scale: float = 0.5) -> torch.Tensor:
    """(N, h, w, C) -> (N, h*scale, w*scale, C/scale^2) with the v2 order of docs/spec.md §4.1."""
    n, w, h, c = x.size()
    x = x.view(n, w, int(h * scale), int(c / scale))
    x = x.permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(h * scale), int(w * scale), int(c / (scale * scale)))
    return x.permute(0, 2, 1, 3).contiguous()


class EagleReference(nn.Module):
    def __init__(self, vision_config, text_config, downsample_ratio=0.5, select_layer=-1, image_token_index=0):
        super().__init__()
        from transformers import Qwen2ForCausalLM, SiglipVisionModel
        self.vision_model = SiglipVisionModel(vision_config)
        self.language_model = Qwen2ForCausalLM(text_config)
        vit, llm = vision_config.hidden_size, text_config.hidden_size
        k = int(1 / downsample_ratio) ** 2
        self.mlp1 = nn.Sequential(nn.LayerNorm(vit * k), nn.Linear(vit * k, llm), nn.GELU(), nn.Linear(llm, llm))
        self.downsample_ratio = downsample_ratio
        self.select_layer = select_layer
        self.image_token_index = image_token_index

    def vision_features(self, pixel_values):
        """The select_layer output that enters the pixel shuffle: (N, P, C_vit)."""
        if self.select_layer == -1:
            return self.vision_model(pixel_values=pixel_values).last_hidden_state
        out = self.vision_model(pixel_values=pixel_values, output_hidden_states=True)
        return out.hidden_states[self.select_layer]

    def visual_tokens(self, pixel_values):
        """(N*tokens_per_tile, C_llm) visual tokens, tiles in order."""
        f = self.vision_features(pixel_values)
        n, p, c = f.shape
        side = int(math.isqrt(p))
        f = pixel_shuffle(f.reshape(n, side, side, c), self.downsample_ratio)
        f = f.reshape(n, -1, f.shape[-1])
        return self.mlp1(f).reshape(-1, self.mlp1[3].out_features)

    def embed(self, input_ids, pixel_values=None):
        """Text embeddings with <IMG_CONTEXT> rows overwritten by visual tokens (input_ids: (B, T))."""
        emb = self.language_model.get_input_embeddings()(input_ids)
        if pixel_values is not None and pixel_values.shape[0] > 0:
            vis = self.visual_tokens(pixel_values).to(emb.dtype)
            mask = input_ids == self.image_token_index
            if int(mask.sum()) != vis.shape[0]:
                raise ValueError(f"{int(mask.sum())} <IMG_CONTEXT> tokens but {vis.shape[0]} visual tokens")
            emb = emb.clone()
            emb[mask] = vis
        return emb

    def forward(self, input_ids, pixel_values=None, attention_mask=None):
        emb = self.embed(input_ids, pixel_values)
        return self.language_model(inputs_embeds=emb, attention_mask=attention_mask).logits

    @torch.no_grad()
    def greedy(self, input_ids, pixel_values, max_new_tokens, stop_ids):
        """Greedy decoding with the KV cache. Returns (new ids, smallest top-1/top-2 logit gap)."""
        emb = self.embed(input_ids[None], pixel_values)
        out = self.language_model(inputs_embeds=emb, use_cache=True)
        past, logits = out.past_key_values, out.logits[0, -1]
        new, gap = [], float("inf")
        for _ in range(max_new_tokens):
            top = torch.topk(logits.float(), 2).values
            gap = min(gap, float(top[0] - top[1]))
            nxt = int(torch.argmax(logits))
            new.append(nxt)
            if nxt in stop_ids:
                break
            out = self.language_model(input_ids=torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[0, -1]
        return new, gap


# ---------------------------------------------------------------- prompt (docs/spec.md §5.3, 5.4)

def build_prompt(question: str, image_token_counts=(), system: str = SYSTEM_PROMPT) -> str:
    """ChatML: system block, then the user turn with one <image N><img>…</img>\\n part per image."""
    parts = [f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"]
    for i, n in enumerate(image_token_counts):
        parts.append(f"<image {i + 1}><img>" + "<IMG_CONTEXT>" * n + "</img>\n")
    parts.append(f"{question}<|im_end|>\n<|im_start|>assistant\n")
    return "".join(parts)
