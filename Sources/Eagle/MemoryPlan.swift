// The memory a run will need, worked out from config.json and the checkpoint's headers before a single weight
// is read, and compared with the memory the machine (or its cgroup) has: a run that cannot fit is a typed error
// naming the figures, never an out-of-memory kill halfway through loading.
//
// What it is, in bytes:
//     weights      Σ elements · bytes per value as held (`WeightStore.held`): 4 widened to fp32, 2 for BF16
//                  read in place (mapped pages that every token reads) or narrowed, 34/32 for q8_0
//                  + the largest tensor's stored bytes (mapped and read while it is widened or quantized)
//     KV cache     layers · 2 · Hkv · D · L · 4 for a context of L tokens
//     activations  the larger of the decoder's L · (6·C + 2·I) · 4 (hidden states, norm, q, attention out,
//                  the MLP's gate and up products) plus the last row's logits V · 4, and one vision tile's
//                  P · (4·C_v + I_v + 2·P) · 4 (q|k|v, attention output, MLP hidden, two threads' score rows)
// Available: MemAvailable from /proc/meminfo, or less when the process's cgroup (v2 memory.max − memory.current,
// or v1 limit_in_bytes − usage_in_bytes) leaves less; `EAGLET_MEMORY_LIMIT_BYTES` caps it further.
// What it is not: exact. Allocator slack and the page cache are not modelled; the plan is meant to catch runs
// that are off by gigabytes, with a margin of 5 % of the available memory.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SafeTensors
import _Essentials

/// The memory a run needs, part by part, and what the machine has.
public struct MemoryPlan: Sendable, Equatable, CustomStringConvertible {
    public var weightBytes: Int
    public var kvCacheBytes: Int
    public var activationBytes: Int
    /// The context the KV cache and activations are sized for.
    public var contextTokens: Int
    /// Bytes the process may still use (nil where it could not be read).
    public var availableBytes: Int?

    public var totalBytes: Int { weightBytes.addingClamped(kvCacheBytes).addingClamped(activationBytes) }

    /// Whether the run fits with a 5 % margin (true when the available memory is unknown).
    public var fits: Bool {
        guard let a = availableBytes else { return true }
        return totalBytes <= a - a / 20
    }

    /// The plan for `config` and the tensors in `checkpoint`: a KV cache for `contextTokens`, activations for a
    /// prefill of `prefillTokens` (default: the whole context).
    public init(
        config c: EagleConfig, checkpoint: TensorSource, contextTokens l: Int, prefillTokens: Int? = nil,
        weights: WeightFormat = .native, availableBytes: Int?
    ) {
        self.init(
            residentWeightsOf: c, contextTokens: l, prefillTokens: prefillTokens ?? l, availableBytes: availableBytes)
        weightBytes = MemoryPlan.weightBytes(config: c, checkpoint: checkpoint, weights: weights)
    }

    /// The weights as they will be held: fp32 for what is widened, stored bytes for what is read in place, plus
    /// the largest stored tensor (mapped and read while it is widened).
    static func weightBytes(config c: EagleConfig, checkpoint: TensorSource, weights: WeightFormat) -> Int {
        let store = WeightStore(checkpoint, format: weights)
        let specs = EagleParameters(c, visionPrefix: EagleWeights.visionPrefix(store)).specs
        var form = [String: HeldDType]()
        for spec in specs { if let key = store.storedKey(spec) { form[key] = store.held(spec) } }
        var held = 0, largestStored = 0
        for name in checkpoint.names {
            guard let info = checkpoint.info(name), info.dtype.isFloatingPoint else { continue }
            let per32 = (form[name] ?? .float32).bytesPer32Values
            held = held.addingClamped(info.elementCount.multipliedClamped(by: per32) / 32)
            largestStored = max(largestStored, info.elementCount.multipliedClamped(by: info.dtype.size))
        }
        return held.addingClamped(largestStored)
    }

    /// The plan once the weights are resident (they already lower the available memory): the KV cache for
    /// `contextTokens` and the activations of a prefill of `prefillTokens`, checked before the cache is allocated.
    public init(residentWeightsOf c: EagleConfig, contextTokens l: Int, prefillTokens: Int, availableBytes: Int?) {
        weightBytes = 0
        let t = c.text, v = c.vision
        kvCacheBytes = [t.numHiddenLayers, 2, t.numKeyValueHeads, t.headDim, l, 4].reduce(1) {
            $0.multipliedClamped(by: $1)
        }
        let decoder = prefillTokens.multipliedClamped(by: (6 * t.hiddenSize + 2 * t.intermediateSize) * 4)
            .addingClamped(t.vocabSize * 4)
        let p = v.gridSide * v.gridSide
        let tile = p.multipliedClamped(by: (4 * v.hiddenSize + v.intermediateSize + 2 * p) * 4)
        activationBytes = max(decoder, tile)
        contextTokens = l
        self.availableBytes = availableBytes
    }

    public var description: String {
        (weightBytes > 0 ? "weights \(gib(weightBytes)), " : "")
            + "KV cache \(gib(kvCacheBytes)) for \(contextTokens) tokens, "
            + "activations \(gib(activationBytes)): \(gib(totalBytes)) in all; "
            + (availableBytes.map { "\(gib($0)) available" } ?? "available memory unknown")
    }

    /// Reads config.json and the checkpoint's headers only (no weight is touched) and plans for `contextTokens`.
    public static func read(directory: String, contextTokens: Int, weights: WeightFormat = .native) throws
        -> MemoryPlan
    {
        let config = try EagleConfig.load(directory: directory)
        return MemoryPlan(
            config: config, checkpoint: try Checkpoint(path: directory), contextTokens: contextTokens,
            weights: weights, availableBytes: availableMemoryBytes())
    }

    /// Throws `EagleError.doesNotFit` when the plan does not fit; `advice` names what the user can change.
    public func check(
        source: String,
        advice: String = "Use a smaller --max-context or --max-new-tokens, or a machine with more memory."
    ) throws {
        guard !fits, let a = availableBytes else { return }
        throw EagleError.doesNotFit(
            source: source, plan: description, neededBytes: totalBytes, availableBytes: a, advice: advice)
    }
}

/// "12.3 GiB", "45.0 MiB", "310 KiB".
func gib(_ bytes: Int) -> String {
    if bytes >= 1 << 30 { return cFormat("%.1f GiB", Double(bytes) / Double(1 << 30)) }
    if bytes >= 1 << 20 { return cFormat("%.1f MiB", Double(bytes) / Double(1 << 20)) }
    return cFormat("%.0f KiB", Double(bytes) / 1024)
}

extension Int {
    func multipliedClamped(by other: Int) -> Int {
        let (r, o) = multipliedReportingOverflow(by: other)
        return o ? .max : r
    }
    func addingClamped(_ other: Int) -> Int {
        let (r, o) = addingReportingOverflow(other)
        return o ? .max : r
    }
}

/// Bytes this process may still allocate: MemAvailable, lowered by a cgroup limit and by
/// `EAGLET_MEMORY_LIMIT_BYTES`; nil when none of them can be read.
public func availableMemoryBytes() -> Int? {
    func number(_ path: String) -> Int? {
        guard let d = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: d, as: UTF8.self).split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) }
    }
    var best: Int? = nil
    func lower(_ x: Int?) { if let x { best = min(best ?? x, x) } }
    lower(procBytes("/proc/meminfo", "MemAvailable"))
    if let limit = number("/sys/fs/cgroup/memory.max"), let used = number("/sys/fs/cgroup/memory.current") {
        lower(limit - used) // "max" (no limit) does not parse as a number and is skipped
    } else if let limit = number("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
        let used = number("/sys/fs/cgroup/memory/memory.usage_in_bytes"), limit < 1 << 60
    {
        lower(limit - used)
    }
    if let cap = ProcessInfo.processInfo.environment["EAGLET_MEMORY_LIMIT_BYTES"].flatMap({ Int($0) }) { lower(cap) }
    return best
}
