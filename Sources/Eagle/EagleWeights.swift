// The checkpoint check: every tensor Eagle 2.5 needs, by name and shape, from the config alone
// (docs/spec.md §7.2). The list is the three components' own declarations (`SiglipVisionParameters`,
// `MLP1Parameters`, `Qwen2Parameters`) under Eagle's prefixes, the same specs their loaders read. Comparing it
// with the checkpoint before loading anything turns "a wrong or truncated checkpoint" into one error that lists
// every missing, unexpected and mis-shaped tensor, instead of failing at the first one. Vision keys may sit
// under `vision_model.vision_model.` (released) or `vision_model.` (transformers 5.x); the pooling head
// (`head.*`) and rotary caches are ignored.
import Connector
import Dispatch
import Tensor
import _CKernels
import Qwen2
import SafeTensors
import SigLIP2

/// Every tensor of Eagle 2.5: the vision tower under `visionPrefix`, `mlp1.*`, the language model under
/// `language_model.`.
public struct EagleParameters: ParameterGroup {
    public let visionModel: SiglipVisionParameters
    public let mlp1: MLP1Parameters
    public let languageModel: Qwen2Parameters

    public init(_ c: EagleConfig, visionPrefix: String) {
        visionModel = SiglipVisionParameters(c.vision, prefix: visionPrefix)
        mlp1 = MLP1Parameters(inChannels: 4 * c.vision.hiddenSize, outChannels: c.text.hiddenSize)
        languageModel = Qwen2Parameters(c.text, prefix: "language_model.")
    }
}

public enum EagleWeights {
    /// Name → shape of every tensor the model reads, with the vision tower under `visionPrefix`.
    public static func expected(_ c: EagleConfig, visionPrefix: String) -> [String: [Int]] {
        Dictionary(
            EagleParameters(c, visionPrefix: visionPrefix).specs.map { ($0.key, $0.shape) },
            uniquingKeysWith: { a, _ in a })
    }

    /// The vision prefix `store` uses (the released one when neither is found, so the check lists it as missing).
    public static func visionPrefix(_ store: WeightStore) -> String {
        VisionWeightNames.prefixes.first { store.contains($0 + VisionWeightNames.probe) }
            ?? VisionWeightNames.prefixes[0]
    }

    /// Compares the checkpoint with the declaration; throws one `CheckpointError.mismatch` listing every problem.
    public static func check(_ store: WeightStore, config c: EagleConfig) throws {
        let prefix = visionPrefix(store)
        try store.check(EagleParameters(c, visionPrefix: prefix).specs) { name in
            name.hasPrefix(prefix + "head.") || name.hasSuffix("rotary_emb.inv_freq")
        }
    }

    public static func check(_ checkpoint: Checkpoint, config c: EagleConfig) throws {
        try check(WeightStore(checkpoint), config: c)
    }

    /// Names of the floating-point tensors holding NaN or ±Inf, in name order (at most `limit`).
    /// Reads the stored bits (F32, BF16, F16, F64) without widening: a value is non-finite when its
    /// exponent field is all ones. Each tensor is split over `threads` threads and read with 64-byte vectors,
    /// so the scan runs at memory speed (a 16 GB checkpoint in about a second from the page cache).
    public static func nonFiniteTensors(
        _ checkpoint: Checkpoint, limit: Int = 11, threads: Int = BLAS.defaultThreads
    ) throws -> [String] {
        var bad = [String]()
        for name in checkpoint.names {
            guard let info = checkpoint.info(name), info.dtype.isFloatingPoint else { continue }
            let found = try checkpoint.file(for: name).withRawBytes(name) { raw -> Bool in
                hasNonFinite(raw, dtype: info.dtype, threads: threads)
            }
            if found { bad.append(name); if bad.count >= limit { break } }
        }
        return bad
    }
}

/// Whether any value of `raw` (little-endian `dtype` values) has an all-ones exponent: the C loop
/// (`eaglet_any_nonfinite`, vectorised by the compiler) over `threads` contiguous parts.
func hasNonFinite(_ raw: UnsafeRawBufferPointer, dtype: DType, threads: Int) -> Bool {
    let size = dtype.size
    guard raw.count >= size, let base = raw.baseAddress else { return false }
    let n = raw.count / size, parts = max(1, min(threads, n >> 20))
    nonisolated(unsafe) let start = base
    let kind: Int32 = dtype == .bf16 ? 1 : dtype == .f16 ? 2 : 0
    let hits = UnsafeMutablePointer<Bool>.allocate(capacity: parts)
    defer { hits.deallocate() }
    nonisolated(unsafe) let flags = hits // each part writes only its own flag
    DispatchQueue.concurrentPerform(iterations: parts) { p in
        let lo = n * p / parts, hi = n * (p + 1) / parts
        flags[p] = eaglet_any_nonfinite(start + lo * size, hi - lo, Int32(size), kind) != 0
    }
    return (0..<parts).contains { hits[$0] }
}
