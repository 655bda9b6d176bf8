"""Eaglet's flash-attention kernel (Sources/EagletGPU/KernelsBF16.swift) against PyTorch on the same card.

The CUDA source is read out of the Swift file (the raw string `source`), compiled by
NVRTC through CuPy, and run on PyTorch's tensors:
  check: output and log-sum-exp against an fp32 attention written out in PyTorch (masked softmax,
         logsumexp), for causal GQA with and without a cache offset p0, bidirectional, D = 128, 72 and 64,
         and ragged lengths; printed as the relative error max|a − b| / max|ref|.
  bench: the kernel alone against torch.nn.functional.scaled_dot_product_attention (bf16, causal, GQA
         28/4 heads of 128) at 4K, 32K and 128K tokens, and So400m's bidirectional 16 heads of 72 at
         1024 tokens: median of CUDA-event timings; FLOPs counted the same way for both (4·T·S·H·D,
         halved when causal).
  hopper: the same check (D = 128 cases) and bench for the Hopper kernel (KernelsHopper.swift, wgmma; -tma variants
         launched through ctypes with their tensor maps), compiled
         by NVRTC for sm_90a through ctypes as Eaglet compiles it, beside the mma.sync kernel and SDPA.
  decode: decode attention (one query token over S keys): the per-head decode_split and the GQA kernel of
         KernelsDecode.swift (one block per kv head, keys staged once for its query heads) against SDPA.
Run on the GPU host: python3 Fixtures/generate/flash_check_torch.py [check] [bench] [decode] [hopper]
"""
import ctypes
import glob
import tempfile
import json
import math
import os
import re
import sys

import cupy as cp
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
SWIFT = os.path.join(HERE, "..", "..", "Sources", "EagletGPU", "KernelsBF16.swift")
HOPPER = os.path.join(HERE, "..", "..", "Sources", "EagletGPU", "KernelsHopper.swift")
DECODE = os.path.join(HERE, "..", "..", "Sources", "EagletGPU", "KernelsDecode.swift")


def kernel_source(path=SWIFT, name="source"):
    """The source as Swift builds it: the raw string's indentation removed and `\\#(blockSum(named: "x"))`
    replaced by the text Kernels.swift's blockSum(named:) returns (`eaglet-gpu info --print-source bf16`
    prints the same bytes)."""
    text = open(path).read()
    m = re.search(r'static let ' + name + r' = #"""\n(.*?)\n\s*"""#', text, re.S)
    lines = m.group(1).split("\n")
    indent = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
    source = "\n".join(l[indent:] for l in lines)
    kernels = open(os.path.join(os.path.dirname(SWIFT), "Kernels.swift")).read()
    body = re.search(r'func blockSum\(named name: String\) -> String \{\n    """\n(.*?)\n    """', kernels, re.S).group(1)
    body = "\n".join(l[4:] for l in body.split("\n"))
    return re.sub(r'\\#\(blockSum\(named: "(\w+)"\)\)', lambda b: body.replace("\\(name)", b.group(1)), source)


BR, BC, THREADS = 128, 64, 128


def fnv1a64(text):
    """The hash eaglet-gpu prints for the same source (GPUKernels.bf16SourceHash)."""
    h = 0xcbf29ce484222325
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return format(h, "x")


def padded(d):
    for p in (64, 80, 96, 128):
        if d <= p:
            return p
    raise ValueError(d)


MODULE = None


def nvrtc_module(source, arch, options=()):
    """NVRTC through ctypes, as Eaglet's Device.compile does (CuPy's RawModule names its own -arch, and
    wgmma needs sm_90a): source → CUBIN → a CuPy module."""
    import nvidia
    names = [p for d in list(nvidia.__path__) for p in glob.glob(d + "/**/libnvrtc.so*", recursive=True)]
    names += glob.glob("/usr/local/cuda*/lib64/libnvrtc.so*")
    lib = ctypes.CDLL(sorted(n for n in names if "builtins" not in n)[0], mode=ctypes.RTLD_GLOBAL)
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"k.cu", 0, None, None) == 0
    opts = [f"--gpu-architecture={arch}".encode(), b"--std=c++17", b"-default-device"] + [o.encode() for o in options]
    rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    n = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
    log = ctypes.create_string_buffer(n.value)
    lib.nvrtcGetProgramLog(prog, log)
    if rc != 0:
        raise RuntimeError("NVRTC: " + log.value.decode())
    lib.nvrtcGetCUBINSize(prog, ctypes.byref(n))
    cubin = ctypes.create_string_buffer(n.value)
    lib.nvrtcGetCUBIN(prog, cubin)
    path = tempfile.mktemp(suffix=".cubin")
    open(path, "wb").write(cubin.raw)
    return cp.RawModule(path=path)


class Flash:
    """One entry point of the kernel: `name` with {dp} for the padded head dim, BR query rows per block."""

    def __init__(self, name="flash_attention_d{dp}", rows=BR, threads=THREADS, module=None, shared=None):
        global MODULE
        if module is None and MODULE is None:
            MODULE = cp.RawModule(code=kernel_source(), options=("--std=c++17",), backend="nvrtc")
        self.module = module or MODULE
        self.name, self.rows, self.threads = name, rows, threads
        self.shared = shared or (lambda dp: (self.rows + 4 * BC) * (dp + 8) * 2)
        self.kernels = {}

    def kernel(self, dp):
        if dp not in self.kernels:
            k = self.module.get_function(self.name.format(dp=dp))
            k.max_dynamic_shared_size_bytes = self.shared(dp)
            self.kernels[dp] = k
        return self.kernels[dp]

    @staticmethod
    def outputs(q, heads, d, out, lse):
        """out (T, H·D) bf16 and lse (H, T) fp32 (new unless given), and the kernels' scale 1/√D · log2 e."""
        t = q.shape[0]
        if out is None:
            out = torch.empty(t, heads * d, device=q.device, dtype=torch.bfloat16)
        if lse is None:
            lse = torch.empty(heads, t, device=q.device, dtype=torch.float32)
        return out, lse, (1.0 / math.sqrt(d)) * math.log2(math.e)

    def __call__(self, q, k, v, heads, kv_heads, d, causal, p0=0, out=None, lse=None):
        """q (T, H·D) or strided rows, k/v (S, Hkv·D) bf16 → out (T, H·D) bf16, lse (H, T) fp32."""
        t, s = q.shape[0], k.shape[0]
        out, lse, scale_log2 = self.outputs(q, heads, d, out, lse)
        dp = padded(d)
        as_cp = lambda x: cp.asarray(x.view(torch.int16)) if x.dtype == torch.bfloat16 else cp.asarray(x)
        grid = ((t + self.rows - 1) // self.rows, heads)
        self.kernel(dp)(grid, (self.threads,), (
            as_cp(q), as_cp(k), as_cp(v), as_cp(out), as_cp(lse), np.int32(t), np.int32(s), np.int32(heads),
            np.int32(kv_heads), np.int32(d), np.int32(q.stride(0)), np.int32(k.stride(0)), np.int32(out.stride(0)),
            np.float32(scale_log2), np.int32(1 if causal else 0), np.int32(p0)),
            shared_mem=self.shared(dp))
        return out, lse


class FlashTMA(Flash):
    """A -tma variant of the Hopper kernel: the K and V tensor maps (CUtensorMap, 128 bytes, encoded by the
    driver's cuTensorMapEncodeTiled as GPU.tensorMap does) follow the usual arguments by value, so the launch
    goes through the driver's cuLaunchKernel (ctypes) on the default stream."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.cuda = ctypes.CDLL("libcuda.so.1")

    def tensor_map(self, t):
        raw = ctypes.create_string_buffer(256)
        addr = (ctypes.addressof(raw) + 63) & ~63
        rc = self.cuda.cuTensorMapEncodeTiled(
            ctypes.c_void_p(addr), 9, 2, ctypes.c_void_p(t.data_ptr()), (ctypes.c_uint64 * 2)(t.stride(0), t.shape[0]),
            (ctypes.c_uint64 * 1)(t.stride(0) * 2), (ctypes.c_uint32 * 2)(64, 128), (ctypes.c_uint32 * 2)(1, 1),
            0, 3, 3, 0)  # bf16, rank 2, no interleave, 128-byte swizzle, L2 256 B promotion, zero fill
        assert rc == 0, f"cuTensorMapEncodeTiled: {rc}"
        return ctypes.string_at(addr, 128)

    def __call__(self, q, k, v, heads, kv_heads, d, causal, p0=0, out=None, lse=None):
        t, s = q.shape[0], k.shape[0]
        out, lse, scale_log2 = self.outputs(q, heads, d, out, lse)
        maps = [(ctypes.c_uint8 * 128).from_buffer_copy(self.tensor_map(x)) for x in (k, v)]
        args = [ctypes.c_uint64(x.data_ptr()) for x in (q, k, v, out, lse)]
        args += [ctypes.c_int32(x) for x in (t, s, heads, kv_heads, d, q.stride(0), k.stride(0), out.stride(0))]
        args += [ctypes.c_float(scale_log2), ctypes.c_int32(1 if causal else 0), ctypes.c_int32(p0)] + maps
        params = (ctypes.c_void_p * len(args))(*[ctypes.cast(ctypes.pointer(a), ctypes.c_void_p) for a in args])
        f = self.kernel(128)
        ptr = getattr(f, "ptr", None) or f.kernel.ptr
        rc = self.cuda.cuLaunchKernel(ctypes.c_void_p(ptr), (t + self.rows - 1) // self.rows, heads, 1,
                                      self.threads, 1, 1, self.shared(128), None, params, None)
        assert rc == 0, f"cuLaunchKernel: {rc}"
        return out, lse


class Decode:
    """decode_split (or, gqa=True, KernelsDecode.swift's decode_split_gqa) + decode_combine: one query token per
    head over S keys (D = 128)."""

    def __init__(self, gqa=False, pipe=False):
        global MODULE
        if MODULE is None:
            MODULE = cp.RawModule(code=kernel_source(), options=("--std=c++17",), backend="nvrtc")
        self.gqa, self.pipe = gqa, pipe
        self.name = "gqa-pipe" if pipe else "gqa" if gqa else "per-head"
        if gqa:
            module = cp.RawModule(code=kernel_source(DECODE), options=("--std=c++17",), backend="nvrtc")
            self.split = module.get_function("decode_split_gqa_pipe" if pipe else "decode_split_gqa")
        else:
            self.split = MODULE.get_function("decode_split")
        self.combine = MODULE.get_function("decode_combine")

    def splits(self, s, heads, kv_heads):
        """DecodeKernel.splits: 4 blocks a multiprocessor per head and 256 keys a split at least, or for the GQA
        kernels 3 (pipelined: 2) per kv head and one 64-key tile."""
        per_sm, h, least = ((2 if self.pipe else 3), kv_heads, 64) if self.gqa else (4, heads, 256)
        return max(1, min((s + least - 1) // least, (per_sm * 132 + h - 1) // h))

    def __call__(self, q, k, v, heads, kv_heads, out=None, lse=None):
        s = k.shape[0]
        n = self.splits(s, heads, kv_heads)
        per = (s + n - 1) // n
        if out is None:
            out = torch.empty(1, heads * 128, device=q.device, dtype=torch.bfloat16)
        if lse is None:
            lse = torch.empty(heads, 1, device=q.device, dtype=torch.float32)
        po = torch.empty(heads * n, 128, device=q.device)
        pml = torch.empty(heads * n, 2, device=q.device)
        as_cp = lambda x: cp.asarray(x.view(torch.int16)) if x.dtype == torch.bfloat16 else cp.asarray(x)
        scale_log2 = (1.0 / math.sqrt(128)) * math.log2(math.e)
        grid, block = ((n, kv_heads), (32 * (heads // kv_heads),)) if self.gqa else ((n, heads), (128,))
        self.split(grid, block, (as_cp(q), as_cp(k), as_cp(v), as_cp(po), as_cp(pml), np.int32(s),
                                 np.int32(heads), np.int32(kv_heads), np.int32(k.stride(0)), np.int32(per),
                                 np.float32(scale_log2)))
        self.combine((heads,), (128,), (as_cp(po), as_cp(pml), as_cp(out), as_cp(lse), np.int32(n)))
        return out, lse


def check_decode(decode):
    g = torch.Generator(device="cuda").manual_seed(1)
    for (s, h, hkv) in [(1, 28, 4), (63, 28, 4), (777, 28, 4), (5000, 7, 1), (5000, 16, 2), (70000, 28, 4)]:
        q = torch.randn(1, h * 128, device="cuda", generator=g).bfloat16()
        k = torch.randn(s, hkv * 128, device="cuda", generator=g).bfloat16()
        v = torch.randn(s, hkv * 128, device="cuda", generator=g).bfloat16()
        out, lse = decode(q, k, v, h, hkv)
        ro, rl = reference(q, k, v, h, hkv, 128, True, s - 1)
        print(json.dumps({"decode S": s, "H": h, "Hkv": hkv, "kernel": decode.name,
                          "splits": decode.splits(s, h, hkv),
                          "out_rel": ((out.float() - ro).abs().max() / ro.abs().max()).item(),
                          "lse_rel": ((lse - rl).abs().max() / rl.abs().max()).item()}), flush=True)


def bench_decode(decodes, flash):
    for s in (4096, 32768, 131072):
        h, hkv = 28, 4
        q = torch.randn(1, h * 128, device="cuda").bfloat16()
        k = torch.randn(s, hkv * 128, device="cuda").bfloat16()
        v = torch.randn(s, hkv * 128, device="cuda").bfloat16()
        out = torch.empty_like(q)
        lse = torch.empty(h, 1, device="cuda")
        qs, ks, vs = q.view(1, 1, h, 128).transpose(1, 2), k.view(1, s, hkv, 128).transpose(1, 2), \
            v.view(1, s, hkv, 128).transpose(1, 2)
        row = {"decode S": s}
        kv_bytes = 2 * s * hkv * 128 * 2
        for decode in decodes:
            name = decode.name
            d = timed(lambda: decode(q, k, v, h, hkv, out, lse))
            row[name + "_s"], row[name + "_GBps"] = d[0], kv_bytes / d[0] / 1e9
        f = timed(lambda: flash(q, k, v, h, hkv, 128, True, s - 1, out, lse))
        p = timed(lambda: F.scaled_dot_product_attention(qs, ks, vs, enable_gqa=True))
        row.update({"flash_T1_s": f[0], "sdpa_s": p[0], "sdpa_GBps": kv_bytes / p[0] / 1e9})
        print(json.dumps(row), flush=True)


def reference(q, k, v, heads, kv_heads, d, causal, p0):
    """fp32 attention written out: (T, H·D), (H, T)."""
    t, s = q.shape[0], k.shape[0]
    qf = q.float().view(t, heads, d).transpose(0, 1)  # H, T, D
    kf = k.float().view(s, kv_heads, d).transpose(0, 1).repeat_interleave(heads // kv_heads, 0)
    vf = v.float().view(s, kv_heads, d).transpose(0, 1).repeat_interleave(heads // kv_heads, 0)
    scores = qf @ kf.transpose(1, 2) / math.sqrt(d)
    if causal:
        pos = torch.arange(t, device=q.device)[:, None] + p0
        keys = torch.arange(s, device=q.device)[None, :]
        scores = scores.masked_fill(keys > pos, float("-inf"))
    lse = torch.logsumexp(scores, -1)
    out = (torch.softmax(scores, -1) @ vf).transpose(0, 1).reshape(t, heads * d)
    return out, lse


def check(flash, quick=False, head_dims=(128, 72, 64)):
    rows = []
    g = torch.Generator(device="cuda").manual_seed(0)
    cases = [  # (T, S, H, Hkv, D, causal, p0)
        (256, 256, 28, 4, 128, True, 0), (1000, 1000, 28, 4, 128, True, 0), (70, 500, 28, 4, 128, True, 430),
        (1, 777, 28, 4, 128, True, 776), (130, 130, 7, 1, 128, True, 0), (1024, 1024, 16, 16, 72, False, 0),
        (333, 333, 16, 16, 72, False, 0), (200, 200, 4, 2, 64, True, 0), (129, 129, 2, 2, 128, False, 0),
        (4096, 4096, 28, 4, 128, True, 0)]
    cases = [c for c in cases if c[4] in head_dims]
    for (t, s, h, hkv, d, causal, p0) in (cases[:4] if quick else cases):
        q = torch.randn(t, h * d, device="cuda", generator=g).bfloat16()
        k = torch.randn(s, hkv * d, device="cuda", generator=g).bfloat16()
        v = torch.randn(s, hkv * d, device="cuda", generator=g).bfloat16()
        out, lse = flash(q, k, v, h, hkv, d, causal, p0)
        ro, rl = reference(q, k, v, h, hkv, d, causal, p0)
        rel_o = ((out.float() - ro).abs().max() / ro.abs().max()).item()
        rel_l = ((lse - rl).abs().max() / rl.abs().max()).item()
        rows.append({"T": t, "S": s, "H": h, "Hkv": hkv, "D": d, "causal": causal, "p0": p0,
                     "out_rel": rel_o, "lse_rel": rel_l, "finite": bool(torch.isfinite(out.float()).all())})
        print(json.dumps(rows[-1]), flush=True)
    if quick or 72 not in head_dims:
        return rows
    # a strided (fused qkv) layout: q, k, v are column slices of one (T, 3C) buffer
    t, h, d = 300, 16, 72
    qkv = torch.randn(t, 3 * h * d, device="cuda", generator=g).bfloat16()
    q, k, v = qkv[:, :h * d], qkv[:, h * d:2 * h * d], qkv[:, 2 * h * d:]
    out, lse = flash(q, k, v, h, h, d, False)
    ro, rl = reference(q.contiguous(), k.contiguous(), v.contiguous(), h, h, d, False, 0)
    rows.append({"case": "fused qkv rows", "out_rel": ((out.float() - ro).abs().max() / ro.abs().max()).item(),
                 "lse_rel": ((lse - rl).abs().max() / rl.abs().max()).item()})
    print(json.dumps(rows[-1]), flush=True)
    return rows


def timed(fn, repeats=10):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    times.sort()
    return times[len(times) // 2], times[0], times[-1]


def bench(flash, sizes, sdpa=True, label=None):
    rows = []
    for (t, h, hkv, d, causal) in sizes:
        q = torch.randn(t, h * d, device="cuda").bfloat16()
        k = torch.randn(t, hkv * d, device="cuda").bfloat16()
        v = torch.randn(t, hkv * d, device="cuda").bfloat16()
        out = torch.empty_like(q)
        lse = torch.empty(h, t, device="cuda")
        qs = q.view(1, t, h, d).transpose(1, 2)
        ks = k.view(1, t, hkv, d).transpose(1, 2)
        vs = v.view(1, t, hkv, d).transpose(1, 2)
        flops = 4.0 * t * t * h * d / (2 if causal else 1)
        e = timed(lambda: flash(q, k, v, h, hkv, d, causal, 0, out, lse))
        p = timed(lambda: F.scaled_dot_product_attention(qs, ks, vs, is_causal=causal, enable_gqa=hkv != h)) \
            if sdpa else (float("nan"),) * 3
        ref = F.scaled_dot_product_attention(qs, ks, vs, is_causal=causal, enable_gqa=hkv != h)
        rel = ((out.float() - ref.transpose(1, 2).reshape(t, h * d).float()).abs().max() / ref.float().abs().max())
        rows.append({**({"kernel": label} if label else {}), "T": t, "H": h, "Hkv": hkv, "D": d, "causal": causal,
                     "eaglet_s": e[0], "eaglet_tflops": flops / e[0] / 1e12, "eaglet_range": [e[1], e[2]],
                     **({"sdpa_s": p[0], "sdpa_tflops": flops / p[0] / 1e12, "sdpa_range": [p[1], p[2]],
                         "share_of_sdpa": p[0] / e[0]} if sdpa else {}), "rel_vs_sdpa": rel.item()})
        print(json.dumps(rows[-1]), flush=True)
        del q, k, v, out, lse
        torch.cuda.empty_cache()
    return rows


def main():
    what = sys.argv[1:] or ["check", "bench"]
    flash = Flash()
    print(json.dumps({"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cupy": cp.__version__,
                      "kernel_fnv1a64": fnv1a64(kernel_source())}), flush=True)
    if "check" in what:
        check(flash)
        check_decode(Decode())
    if "decode" in what:
        check_decode(Decode(gqa=True))
        check_decode(Decode(gqa=True, pipe=True))
        bench_decode([Decode(), Decode(gqa=True), Decode(gqa=True, pipe=True)], flash)
    if "hopper" in what:
        # the variants of KernelSourceHopper.variants (EAGLET_FLASH's names), and wg compiled with -DSERIAL (no
        # overlap of softmax and P·V inside a warpgroup); "variants=a,b" picks some
        hop_source = kernel_source(HOPPER)
        ws_source = hop_source + "\n\n" + kernel_source(HOPPER, "warpSpecializedSource")
        print(json.dumps({"hopper_kernel_fnv1a64": fnv1a64(hop_source),
                          "hopper_ws_kernel_fnv1a64": fnv1a64(ws_source)}), flush=True)
        table = {"wg": ("flash_attention_wg_d128", 256, 2, []), "wg-serial": ("flash_attention_wg_d128", 256, 2, ["SERIAL"]),
                 "ws": ("flash_attention_ws_d128", 384, 2, []), "ws-pp": ("flash_attention_ws_pp_d128", 384, 2, []),
                 "ws3": ("flash_attention_ws3_d128", 384, 3, []), "ws3-pp": ("flash_attention_ws3_pp_d128", 384, 3, []),
                 "ws-tma": ("flash_attention_ws_tma_d128", 384, 2, []),
                 "ws-tma-pp": ("flash_attention_ws_tma_pp_d128", 384, 2, []),
                 "ws3-tma": ("flash_attention_ws3_tma_d128", 384, 3, [])}
        picked = [a.split("=", 1)[1].split(",") for a in what if a.startswith("variants=")]
        modules, good = {}, []
        for name in (picked[0] if picked else list(table)):
            entry, threads, stages, defines = table[name]
            key = (name.startswith("ws"), tuple(defines))
            if key not in modules:
                modules[key] = nvrtc_module(ws_source if key[0] else hop_source, "sm_90a", ["-D" + d for d in defines])
            print(json.dumps({"variant": name}), flush=True)
            hop = (FlashTMA if "tma" in name else Flash)(entry, rows=128, threads=threads, module=modules[key],
                        shared=lambda dp, st=stages: 32768 * (1 + 2 * st) + 1024 + 32 * st)
            rows = check(hop, head_dims=(128,))
            if all(r["out_rel"] < 0.02 and r["lse_rel"] < 1e-5 and r["finite"] for r in rows):
                good.append((name, hop))
        if "hopperbench" in what:
            rate = {}
            for size in [(4096, 28, 4, 128, True), (32768, 28, 4, 128, True), (131072, 28, 4, 128, True)]:
                bench(flash, [size], label="mma.sync")
                for (name, hop) in good:
                    r = bench(hop, [size], sdpa=False, label=name)[0]
                    if size[0] > 4096:
                        rate[name] = rate.get(name, 1.0) * r["eaglet_tflops"]
            if rate:
                print(json.dumps({"best": max(rate, key=rate.get)}), flush=True)
    if "bench" in what:
        bench(flash, [(4096, 28, 4, 128, True), (32768, 28, 4, 128, True), (131072, 28, 4, 128, True),
                      (1024, 16, 16, 72, False)])


if __name__ == "__main__":
    main()
