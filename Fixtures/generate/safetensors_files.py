"""Safetensors files written by the reference implementations, for Eaglet's reader to read back:

* Fixtures/safetensors/mixed.safetensors: F32, BF16, F16, I32, I64 tensors (odd shapes, a scalar, an
  empty tensor) written by `safetensors.torch.save_file` with metadata; expected values are stored as
  F32/I64 in the fixture file itself (the widening PyTorch does).
* Fixtures/safetensors/sharded/: a checkpoint split into shards with model.safetensors.index.json,
  written by huggingface_hub's `save_torch_state_dict` (the code path transformers uses).

Run: python3 Fixtures/generate/safetensors_files.py
"""
import os

import torch
from huggingface_hub import save_torch_state_dict
from safetensors.torch import save_file

from fixturelib import ROOT, write_fixture

SEED = 7
g = torch.Generator().manual_seed(SEED)
folder = os.path.join(ROOT, "Fixtures", "safetensors")
os.makedirs(folder, exist_ok=True)

w = torch.randn(5, 7, generator=g)
mixed = {
    "layer.weight": w,
    "layer.weight_bf16": w.to(torch.bfloat16),
    "layer.weight_f16": w.to(torch.float16),
    "ids_i64": torch.tensor([[151644, 8948, 198], [-1, 0, 2**40]], dtype=torch.int64),
    "ids_i32": torch.tensor([3, -7, 2**31 - 1], dtype=torch.int32),
    "scalar": torch.tensor(2.5),
    "empty": torch.zeros(0, 3),
}
save_file(mixed, os.path.join(folder, "mixed.safetensors"), metadata={"format": "pt", "written_by": "safetensors.torch"})

# Expected values, as PyTorch widens them.
expected = {
    "layer.weight": w,
    "layer.weight_bf16": w.to(torch.bfloat16).float(),
    "layer.weight_f16": w.to(torch.float16).float(),
    "ids_i64": mixed["ids_i64"],
    "ids_i32": mixed["ids_i32"].to(torch.int64),
    "scalar": mixed["scalar"],
}

# A sharded checkpoint with realistic key names (a tiny Qwen2-like state dict).
state = {}
for i in range(3):
    p = f"language_model.model.layers.{i}."
    state[p + "self_attn.q_proj.weight"] = torch.randn(16, 16, generator=g)
    state[p + "self_attn.q_proj.bias"] = torch.randn(16, generator=g)
    state[p + "mlp.gate_proj.weight"] = torch.randn(24, 16, generator=g).to(torch.bfloat16)
state["language_model.model.embed_tokens.weight"] = torch.randn(50, 16, generator=g)
sharded = os.path.join(folder, "sharded")
os.makedirs(sharded, exist_ok=True)
for f in os.listdir(sharded):
    os.remove(os.path.join(sharded, f))
save_torch_state_dict(state, sharded, max_shard_size=4000)
for k, v in state.items():
    expected["sharded/" + k] = v.float()

write_fixture("safetensors-expected", expected, generator="Fixtures/generate/safetensors_files.py", seed=SEED,
              tolerance="exact", notes="values of Fixtures/safetensors/* as PyTorch widens them")
print(sorted(os.listdir(sharded)))
