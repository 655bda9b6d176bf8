// The bf16 activation path of the GPU mirror (docs/gpu.md): activations, the KV cache and weights
// are bf16 on the device; every product accumulates in fp32 (cuBLAS compute type 32F) and rounds once on
// store; norms, softmax statistics and RoPE angles are fp32. A layer issues fused products — q, k and v as
// one (T, (H + 2·Hkv)·D) product, gate and up as one (T, 2I) product — and the residual add is the product's
// own beta = 1 on a copy of the residual stream. The fp32 path (GPUOps, GPUQwen2Layer, GPUSiglipLayer) stays
// for checking; `GPUBench.realSizeAgreement` holds the two against the CPU.
// Shapes: T tokens, C width, H heads over Hkv kv heads of D, I the MLP width.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import QwenAttention
import Tensor

extension GPU {
    /// Compiles (or loads from the cache) the kernels of KernelsBF16.swift and KernelsDecode.swift.
    /// On a Hopper part (sm_90) the wgmma flash kernel (KernelsHopper.swift) is compiled too, for sm_90a, and
    /// attention with D = 128 runs on it; EAGLET_FLASH=mma keeps every head dim on the mma.sync kernel, and
    /// EAGLET_FLASH=wg|ws|ws-pp|ws3|ws3-pp|ws-tma|ws-tma-pp|ws3-tma picks one of its variants. An NVRTC too old
    /// for sm_90a, or a driver without tensor maps for a -tma variant, says so once on stderr and leaves the
    /// mma.sync kernel in charge.
    public func loadKernelsBF16() throws {
        try load(source: KernelSourceBF16.source, key: KernelSourceBF16.module)
        try load(source: KernelSourceDecode.source, key: KernelSourceDecode.module)
        let program = KernelSourceHopper.program(for: hopperFlashVariant)
        guard computeCapability == (9, 0), ProcessInfo.processInfo.environment["EAGLET_FLASH"] != "mma",
            !isLoaded(program.module)
        else { return }
        if KernelSourceHopper.variants[hopperFlashVariant]?.tma == true && driver.cuTensorMapEncodeTiled == nil {
            let note = "note: this driver has no cuTensorMapEncodeTiled; attention runs on the mma.sync kernel\n"
            _ = note.withCString { write(2, $0, strlen($0)) }
            return
        }
        do {
            try load(source: program.source, key: program.module, architecture: "sm_90a")
        } catch {
            let note =
                "note: the Hopper flash kernel did not compile (\(error)); attention runs on the mma.sync kernel\n"
            _ = note.withCString { write(2, $0, strlen($0)) }
        }
    }

    /// Whether attention with head dim `d` runs on the Hopper (wgmma) flash kernel (never while
    /// `hopperFlashEnabled` is false).
    public func usesHopperFlash(headDim d: Int) -> Bool {
        hopperFlashEnabled && d == 128 && isLoaded(KernelSourceHopper.program(for: hopperFlashVariant).module)
    }

    /// The FNV-1a 64 hash (hex) of the Hopper program in use: reports carry it.
    public var hopperFlashSourceHash: String { GPUKernels.hopperSourceHash(variant: hopperFlashVariant) }

    /// The Hopper kernel's variant in use: EAGLET_FLASH's, when it names one, else the default.
    public var hopperFlashVariant: String { KernelSourceHopper.variantInUse }

    /// The flash kernel attention with head dim `d` runs on, for reports: the Hopper variant's name, or "mma".
    public func flashKernel(headDim d: Int) -> String { usesHopperFlash(headDim: d) ? hopperFlashVariant : "mma" }

    func runBF16(_ name: String, elements n: Int, _ args: [KernelArgument]) throws {
        guard n > 0 else { return }
        try launch(KernelSourceBF16.module, name, grid: grid(n), block: (GPU.threads, 1, 1), args)
    }

    /// Matrices stacked along their rows into one bf16 device buffer, each uploaded as it is stored: BF16 bits
    /// straight from the mapped checkpoint, fp32 narrowed on the host (round to nearest even), q8_0 widened
    /// and narrowed one matrix at a time.
    public func uploadBF16(_ parts: [Linear.Weight]) throws -> GPUBuffer {
        let total = parts.reduce(0) { $0 + $1.shape[0] * $1.shape[1] }
        let b = try alloc(total, elementSize: 2)
        var offset = 0
        for w in parts {
            let n = w.shape[0] * w.shape[1]
            switch w {
            case .bf16(let m):
                try check(driver.cuMemcpyHtoD(b.at(offset), m.bits, n * 2), "cuMemcpyHtoD_v2")
            case .f32, .q8_0:
                let bits = w.widened.storage.map(floatToBF16)
                try bits.withUnsafeBytes {
                    try check(driver.cuMemcpyHtoD(b.at(offset), $0.baseAddress!, n * 2), "cuMemcpyHtoD_v2")
                }
            }
            offset += n
        }
        return b
    }

    /// A bf16 buffer's values as fp32 on the host.
    public func downloadBF16(_ b: GPUBuffer, count: Int? = nil) throws -> [Float] {
        precondition(b.elementSize == 2, "downloadBF16: bf16 buffers only")
        let n = count ?? b.count
        let f = try alloc(n)
        try runBF16("bf16_to_f32", elements: n, [.ptr(b), .ptr(f), .int64(Int64(n))])
        return try download(f)
    }

    /// Flash attention over bf16 q (T, ·), k and v (S, ·) with row strides qs, ks (elements), head h at
    /// columns h·D and kv head g at g·D; out (T, ·) bf16 rows `outStride` apart; lse (H, T) fp32 when given.
    public func flashAttention(
        q: DevicePointer, qStride: Int, k: DevicePointer, v: DevicePointer, kvStride: Int,
        out: DevicePointer, outStride: Int, lse: DevicePointer? = nil, tokens t: Int, keys s: Int, heads h: Int,
        kvHeads hkv: Int, headDim d: Int, causal: Bool, start p0: Int, stream: GPUStream? = nil
    ) throws {
        guard let dp = KernelSourceBF16.paddedHeadDim(d), h % hkv == 0,
            qStride % 8 == 0, kvStride % 8 == 0, outStride % 2 == 0
        else {
            throw GPUError.unsupported(
                "flash attention needs a head dim ≤ 128 that is a multiple of 8, H a multiple of Hkv and row strides "
                    + "that are multiples of 8 (got D \(d), H \(h), Hkv \(hkv), strides \(qStride)/\(kvStride))")
        }
        guard t > 0 else { return }
        let scaleLog2 = (1 / Float(d).squareRoot()) * Float(1.4426950408889634)
        let args: [KernelArgument] = [
            .pointer(q), .pointer(k), .pointer(v), .pointer(out), .pointer(lse ?? 0), .int(t), .int(s), .int(h),
            .int(hkv), .int(d), .int(qStride), .int(kvStride), .int(outStride), .float(scaleLog2),
            .int(causal ? 1 : 0), .int(p0)
        ]
        if usesHopperFlash(headDim: d), let kernel = KernelSourceHopper.variants[hopperFlashVariant] {
            let maps: [KernelArgument] =
                kernel.tma
                ? [
                    .bytes(try tensorMap(k, rows: s, rowStride: kvStride)),
                    .bytes(try tensorMap(v, rows: s, rowStride: kvStride))
                ] : []
            try launch(
                KernelSourceHopper.program(for: hopperFlashVariant).module, kernel.entry,
                grid: ((t + KernelSourceHopper.blockRows - 1) / KernelSourceHopper.blockRows, h, 1),
                block: (kernel.threads, 1, 1), shared: KernelSourceHopper.sharedBytes(stages: kernel.stages),
                stream: stream, args + maps)
            return
        }
        try launch(
            KernelSourceBF16.module, "flash_attention_d\(dp)",
            grid: ((t + KernelSourceBF16.blockRows - 1) / KernelSourceBF16.blockRows, h, 1),
            block: (KernelSourceBF16.threads, 1, 1), shared: KernelSourceBF16.flashSharedBytes(paddedHeadDim: dp),
            stream: stream, args)
    }

    /// The tensor map (CUtensorMap, 128 bytes) the Hopper kernel's TMA copies read K or V through: a (rows,
    /// rowStride) bf16 matrix at `base`, copied in boxes of 64 columns × 128 rows (one half of a head's d for
    /// one 128-key tile) with the 128-byte swizzle; rows past the end arrive as zeros.
    func tensorMap(_ base: DevicePointer, rows: Int, rowStride: Int) throws -> [UInt8] {
        guard let encode = driver.cuTensorMapEncodeTiled else {
            throw GPUError.unsupported("tensor maps need a CUDA 12 driver (cuTensorMapEncodeTiled)")
        }
        let map = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 64)
        defer { map.deallocate() }
        let dims: [UInt64] = [UInt64(rowStride), UInt64(rows)], strides: [UInt64] = [UInt64(rowStride * 2)]
        let box: [UInt32] = [64, 128], step: [UInt32] = [1, 1]
        // CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 = 9, rank 2, no interleave, CU_TENSOR_MAP_SWIZZLE_128B = 3,
        // CU_TENSOR_MAP_L2_PROMOTION_L2_256B = 3, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0 (zeros).
        let code = encode(
            map, 9, 2, UnsafeMutableRawPointer(bitPattern: UInt(base)), dims, strides, box, step, 0, 3, 3, 0)
        try check(code, "cuTensorMapEncodeTiled(\(rows) rows of \(rowStride))")
        return Array(UnsafeRawBufferPointer(start: map, count: 128))
    }

    /// The decode kernel for H query heads over Hkv kv heads: EAGLET_DECODE's when it names one, else
    /// `DecodeKernel.default`; `.perHead` wherever the GQA kernels cannot run (G = H/Hkv above 8, or their module
    /// not loaded).
    public func decodeKernel(heads h: Int, kvHeads hkv: Int) -> DecodeKernel {
        guard h % hkv == 0, h / hkv <= KernelSourceDecode.maxGroup, isLoaded(KernelSourceDecode.module) else {
            return .perHead
        }
        return DecodeKernel(rawValue: ProcessInfo.processInfo.environment["EAGLET_DECODE"] ?? "") ?? .default
    }

    /// One query token per head (T = 1, at position S − 1) over S keys, split across blocks (flash-decoding):
    /// q (1, H·128) bf16, k and v (S, ·) rows `kvStride` apart; out (1, H·128) bf16, lse (H) when given.
    public func decodeAttention(
        q: DevicePointer, k: DevicePointer, v: DevicePointer, kvStride: Int, out: DevicePointer,
        lse: DevicePointer? = nil, keys s: Int, heads h: Int, kvHeads hkv: Int
    ) throws {
        let kernel = decodeKernel(heads: h, kvHeads: hkv)
        let n = kernel.splits(keys: s, heads: h, kvHeads: hkv), per = (s + n - 1) / n
        let partO = try alloc(h * n * 128), partML = try alloc(h * n * 2)
        let scaleLog2 = (1 / Float(128).squareRoot()) * Float(1.4426950408889634)
        let shape = kernel.launch(splits: n, heads: h, kvHeads: hkv)
        try launch(
            kernel.module, kernel.entry, grid: shape.grid, block: shape.block,
            [
                .pointer(q), .pointer(k), .pointer(v), .ptr(partO), .ptr(partML), .int(s), .int(h), .int(hkv),
                .int(kvStride), .int(per), .float(scaleLog2)
            ])
        try launch(
            KernelSourceBF16.module, "decode_combine", grid: (h, 1, 1), block: (128, 1, 1),
            [.ptr(partO), .ptr(partML), .pointer(out), .pointer(lse ?? 0), .int(n)])
        withExtendedLifetime((partO, partML)) {}
    }

    /// y (M, N) bf16 = x (M, K) bf16 · Wᵀ (+ y when `accumulate`), fp32 accumulation, one rounding.
    public func linearBF16(_ x: GPUBuffer, rows m: Int, _ l: GPULinear, into y: GPUBuffer, accumulate: Bool = false)
        throws
    {
        guard let w = l.weightBF16 else { throw GPUError.unsupported("linearBF16 reads bf16 weights") }
        precondition(x.elementSize == 2 && y.elementSize == 2, "linearBF16: bf16 activations")
        let (blas, h) = try cublas()
        let call = GemmCall.linear(rows: m, out: l.outFeatures, in: l.inFeatures)
        var one: Float = 1, beta: Float = accumulate ? 1 : 0
        let status = blas.gemmEx(
            h, CuBLASAPI.opT, CuBLASAPI.opN, Int32(call.m), Int32(call.n), Int32(call.k), &one,
            w.pointer, CuBLASAPI.r16BF, Int32(call.lda), x.pointer, CuBLASAPI.r16BF, Int32(call.ldb),
            &beta, y.pointer, CuBLASAPI.r16BF, Int32(call.ldc), CuBLASAPI.compute32F, CuBLASAPI.gemmDefault)
        guard status == 0 else { throw GPUError.cublas(call: "bf16→bf16 " + call.description, status: status) }
    }

    /// RMSNorm of bf16 rows (fp32 statistics, fp32 weight) into `y`.
    public func rmsNormBF16(_ x: GPUBuffer, rows: Int, width c: Int, weight: GPUBuffer, eps: Float, into y: GPUBuffer)
        throws
    {
        try launch(
            KernelSourceBF16.module, "rms_norm_bf16", grid: (rows, 1, 1), block: (GPU.threads, 1, 1),
            [.ptr(x), .ptr(weight), .ptr(y), .int(c), .float(eps)])
    }

    /// LayerNorm of bf16 rows (fp32 statistics, fp32 weight and bias) into `y`.
    public func layerNormBF16(
        _ x: GPUBuffer, rows: Int, width c: Int, weight: GPUBuffer, bias: GPUBuffer, eps: Float, into y: GPUBuffer
    ) throws {
        try launch(
            KernelSourceBF16.module, "layer_norm_bf16", grid: (rows, 1, 1), block: (GPU.threads, 1, 1),
            [.ptr(x), .ptr(weight), .ptr(bias), .ptr(y), .int(c), .float(eps)])
    }

    /// y = x + b (b per column; nil: a plain copy), bf16.
    public func residualBF16(_ x: GPUBuffer, bias: GPUBuffer?, count n: Int, width c: Int, into y: GPUBuffer) throws {
        try runBF16(
            "residual_bias_bf16", elements: n,
            [.ptr(x), .pointer(bias?.pointer ?? 0), .ptr(y), .int64(Int64(n)), .int(c)])
    }

    /// In place: y += b per column (b may be nil), then gelu_pytorch_tanh when `gelu`.
    public func biasActBF16(_ y: GPUBuffer, bias: GPUBuffer?, count n: Int, width c: Int, gelu: Bool) throws {
        try runBF16(
            "bias_act_bf16", elements: n,
            [.ptr(y), .pointer(bias?.pointer ?? 0), .int64(Int64(n)), .int(c), .int(gelu ? 1 : 0)])
    }
}

/// One `Qwen2DecoderLayer` in bf16: fused qkv and gate/up weights, the KV cache in bf16.
public struct GPUQwen2LayerBF16 {
    let inputNorm, postNorm: GPUBuffer
    let qkv, o, gateUp, down: GPULinear
    let qkvBias: GPUBuffer?

    /// From the layer's linears, each uploaded in its stored dtype (`GPU.uploadBF16`): q, k, v and gate, up are
    /// stacked along N into one product each.
    public init(
        gpu: GPU, inputNorm: [Float], postNorm: [Float], q: Linear, k: Linear, v: Linear, o: Linear, gate: Linear,
        up: Linear, down: Linear
    ) throws {
        self.inputNorm = try gpu.upload(inputNorm); self.postNorm = try gpu.upload(postNorm)
        let c = q.inFeatures
        qkv = GPULinear(
            bf16: try gpu.uploadBF16([q.stored, k.stored, v.stored]),
            out: q.outFeatures + k.outFeatures + v.outFeatures,
            in: c)
        if let qb = q.bias, let kb = k.bias, let vb = v.bias {
            qkvBias = try gpu.upload(qb.storage + kb.storage + vb.storage)
        } else {
            qkvBias = nil
        }
        self.o = GPULinear(bf16: try gpu.uploadBF16([o.stored]), out: o.outFeatures, in: o.inFeatures)
        gateUp = GPULinear(
            bf16: try gpu.uploadBF16([gate.stored, up.stored]), out: gate.outFeatures + up.outFeatures, in: c)
        self.down = GPULinear(bf16: try gpu.uploadBF16([down.stored]), out: down.outFeatures, in: down.inFeatures)
    }

    /// x (T, C) bf16 at positions p0 … → new (T, C) bf16; keys and values (rows of Hkv·D, bf16) written at
    /// p0 ..< p0 + T and attended over 0 ..< p0 + T.
    public func callAsFunction(
        _ gpu: GPU, _ x: GPUBuffer, tokens t: Int, width c: Int, heads h: Int, kvHeads hkv: Int, headDim d: Int,
        eps: Float, invFreq: GPUBuffer, keys: GPUBuffer, values: GPUBuffer, start p0: Int
    ) throws -> GPUBuffer {
        let fused = try project(gpu, x, tokens: t, width: c, eps: eps)
        let q = try gpu.alloc(t * h * d, elementSize: 2)
        try rope(
            gpu, fused: fused.pointer, tokens: t, heads: h, kvHeads: hkv, headDim: d, invFreq: invFreq, q: q.pointer,
            keys: keys.pointer, values: values.pointer, start: p0)
        let attn = try gpu.alloc(t * h * d, elementSize: 2)
        if t == 1 && d == 128 {
            try gpu.decodeAttention(
                q: q.pointer, k: keys.pointer, v: values.pointer, kvStride: hkv * d, out: attn.pointer, keys: p0 + 1,
                heads: h, kvHeads: hkv)
        } else {
            try gpu.flashAttention(
                q: q.pointer, qStride: h * d, k: keys.pointer, v: values.pointer, kvStride: hkv * d, out: attn.pointer,
                outStride: h * d, tokens: t, keys: p0 + t, heads: h, kvHeads: hkv, headDim: d, causal: true, start: p0)
        }
        return try finish(gpu, x, attention: attn, tokens: t, width: c, eps: eps)
    }

    /// input_layernorm then the fused q, k, v product: x (T, C) → (T, (H + 2·Hkv)·D) bf16, bias not yet added.
    func project(_ gpu: GPU, _ x: GPUBuffer, tokens t: Int, width c: Int, eps: Float) throws -> GPUBuffer {
        let a = try gpu.alloc(t * c, elementSize: 2)
        try gpu.rmsNormBF16(x, rows: t, width: c, weight: inputNorm, eps: eps, into: a)
        let fused = try gpu.alloc(t * qkv.outFeatures, elementSize: 2)
        try gpu.linearBF16(a, rows: t, qkv, into: fused)
        return fused
    }

    /// The qkv bias and RoPE at positions p0 ..< p0 + T: q to rows 0 ..< T of `q` (·, H·D), k and v to rows
    /// p0 ..< p0 + T of `keys` and `values` (·, Hkv·D).
    func rope(
        _ gpu: GPU, fused: DevicePointer, tokens t: Int, heads h: Int, kvHeads hkv: Int, headDim d: Int,
        invFreq: GPUBuffer, q: DevicePointer, keys: DevicePointer, values: DevicePointer, start p0: Int
    ) throws {
        try gpu.runBF16(
            "qkv_bias_rope_bf16", elements: t * (h + 2 * hkv) * d / 2,
            [
                .pointer(fused), .pointer(qkvBias?.pointer ?? 0), .ptr(invFreq), .pointer(q), .pointer(keys),
                .pointer(values), .int(t), .int(h), .int(hkv), .int(d), .int(p0)
            ])
    }

    /// o_proj onto the residual x, post_attention_layernorm, the SwiGLU MLP onto the residual: → (T, C) bf16.
    func finish(_ gpu: GPU, _ x: GPUBuffer, attention attn: GPUBuffer, tokens t: Int, width c: Int, eps: Float) throws
        -> GPUBuffer
    {
        let a = try gpu.alloc(t * c, elementSize: 2)
        let res = try gpu.alloc(t * c, elementSize: 2)
        try gpu.residualBF16(x, bias: nil, count: t * c, width: c, into: res)
        try gpu.linearBF16(attn, rows: t, o, into: res, accumulate: true)
        try gpu.rmsNormBF16(res, rows: t, width: c, weight: postNorm, eps: eps, into: a)
        let gu = try gpu.alloc(t * gateUp.outFeatures, elementSize: 2)
        try gpu.linearBF16(a, rows: t, gateUp, into: gu)
        let inter = gateUp.outFeatures / 2
        let act = try gpu.alloc(t * inter, elementSize: 2)
        try gpu.runBF16("silu_mul_bf16", elements: t * inter, [.ptr(gu), .ptr(act), .int64(Int64(t)), .int(inter)])
        try gpu.linearBF16(act, rows: t, down, into: res, accumulate: true)
        return res
    }
}

/// One `SiglipEncoderLayer` in bf16: fused qkv weights; q, k and v read in place from the fused rows.
public struct GPUSiglipLayerBF16 {
    let ln1w, ln1b, ln2w, ln2b: GPUBuffer
    let qkv, o, fc1, fc2: GPULinear
    let qkvBias, oBias, fc1Bias, fc2Bias: GPUBuffer

    /// From fp32 host weights and biases ((N, K) and (N) each).
    public init(
        gpu: GPU, ln1: ([Float], [Float]), ln2: ([Float], [Float]), q: ([Float], [Float]), k: ([Float], [Float]),
        v: ([Float], [Float]), o: ([Float], [Float]), fc1: ([Float], [Float]), fc2: ([Float], [Float]), width c: Int,
        intermediate i: Int
    ) throws {
        ln1w = try gpu.upload(ln1.0); ln1b = try gpu.upload(ln1.1)
        ln2w = try gpu.upload(ln2.0); ln2b = try gpu.upload(ln2.1)
        qkv = try GPULinear(gpu: gpu, weight: q.0 + k.0 + v.0, bias: nil, out: 3 * c, in: c, precision: .bf16)
        qkvBias = try gpu.upload(q.1 + k.1 + v.1)
        self.o = try GPULinear(gpu: gpu, weight: o.0, bias: nil, out: c, in: c, precision: .bf16)
        oBias = try gpu.upload(o.1)
        self.fc1 = try GPULinear(gpu: gpu, weight: fc1.0, bias: nil, out: i, in: c, precision: .bf16)
        fc1Bias = try gpu.upload(fc1.1)
        self.fc2 = try GPULinear(gpu: gpu, weight: fc2.0, bias: nil, out: c, in: i, precision: .bf16)
        fc2Bias = try gpu.upload(fc2.1)
    }

    /// x + attn(ln1(x)), then + mlp(ln2(·)): (T, C) bf16 → new (T, C) bf16, bidirectional, H heads.
    public func callAsFunction(_ gpu: GPU, _ x: GPUBuffer, tokens t: Int, width c: Int, heads: Int, eps: Float) throws
        -> GPUBuffer
    {
        let a = try gpu.alloc(t * c, elementSize: 2)
        try gpu.layerNormBF16(x, rows: t, width: c, weight: ln1w, bias: ln1b, eps: eps, into: a)
        let fused = try gpu.alloc(t * 3 * c, elementSize: 2)
        try gpu.linearBF16(a, rows: t, qkv, into: fused)
        try gpu.biasActBF16(fused, bias: qkvBias, count: t * 3 * c, width: 3 * c, gelu: false)
        let attn = try gpu.alloc(t * c, elementSize: 2)
        try gpu.flashAttention(
            q: fused.pointer, qStride: 3 * c, k: fused.at(c), v: fused.at(2 * c), kvStride: 3 * c,
            out: attn.pointer, outStride: c, tokens: t, keys: t, heads: heads, kvHeads: heads, headDim: c / heads,
            causal: false, start: 0)
        let h = try gpu.alloc(t * c, elementSize: 2)
        try gpu.residualBF16(x, bias: oBias, count: t * c, width: c, into: h)
        try gpu.linearBF16(attn, rows: t, o, into: h, accumulate: true)
        try gpu.layerNormBF16(h, rows: t, width: c, weight: ln2w, bias: ln2b, eps: eps, into: a)
        let m = try gpu.alloc(t * fc1.outFeatures, elementSize: 2)
        try gpu.linearBF16(a, rows: t, fc1, into: m)
        try gpu.biasActBF16(m, bias: fc1Bias, count: t * fc1.outFeatures, width: fc1.outFeatures, gelu: true)
        let y = try gpu.alloc(t * c, elementSize: 2)
        try gpu.residualBF16(h, bias: fc2Bias, count: t * c, width: c, into: y)
        try gpu.linearBF16(m, rows: t, fc2, into: y, accumulate: true)
        return y
    }
}
