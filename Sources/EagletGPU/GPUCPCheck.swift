// The check behind `eaglet-gpu cp`: one context-parallel scheme's device program (CPDevice.swift) on seeded bf16
// q, k, v, every rank's out and lse against the flash kernel run once over the whole sequence on one GPU (the
// single-GPU attention), with bytes sent, attention FLOPs and wall time per run, beside that one kernel's time.
//
// What it is: `GPUCPCheck` (flags validated as `eaglet cp` validates them, inputs token-major: q (T, H·D), kv (T,
// 2·Hkv·D) = [k | v]), `reference` (the one-GPU flash call), `runRank` (one rank: shard, upload, run the program
// `repeats` times between barriers, compare) and `report` (the JSON line: `eaglet cp`'s keys plus the device's).
// Out is judged within the `bf16` row (both sides hold bf16-rounded blocks, merged in another order) and lse
// within `fp32-block` (fp32 statistics of the same scores).
// What it is not: a scaling measurement when the ranks share one GPU (--ranks-on-one-gpu); there the time says
// what the program costs beyond the one kernel, all ranks' work running on one device.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import ContextParallel
import Qwen2
import Tensor
import _Essentials

public struct GPUCPCheck: Sendable {
    public let plan: CPPlan
    public let seq: Int, heads: Int, kvHeads: Int, headDim: Int
    /// q (T, H·D) and kv (T, 2·Hkv·D) fp32 (rounded to bf16 on upload).
    public let q: [Float], kv: [Float]

    /// On a GPU host inputs may be 4× `eaglet cp`'s limit: T·H·D ≤ 2³⁰ (4 GiB of fp32 q on the host).
    public static let elementLimit = 1 << 30

    public init(
        strategy: String, world: Int, ulysses: Int?, seq: Int, heads: Int, kvHeads: Int, headDim: Int, seed: UInt64
    ) throws {
        plan = try CPCheck.plan(
            strategy: strategy, world: world, ulysses: ulysses, seq: seq, heads: heads, kvHeads: kvHeads,
            headDim: headDim, elementLimit: GPUCPCheck.elementLimit)
        guard KernelSourceBF16.paddedHeadDim(headDim) != nil else {
            throw CPCheckError("--head-dim must be a multiple of 8 up to 128 on the GPU (got \(headDim))")
        }
        self.seq = seq; self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
        q = Tensor.seeded([seq * heads * headDim], seed: seed &+ 1).storage
        kv = Tensor.seeded([seq * 2 * kvHeads * headDim], seed: seed &+ 2).storage
    }

    /// Rows of a (T, cols) matrix in `layout` order.
    public static func rows(_ x: [Float], cols: Int, _ layout: Layout) -> [Float] {
        var out = [Float]()
        out.reserveCapacity(Sharding.tokenCount(layout) * cols)
        for s in layout { out += x[(s.start * cols)..<(s.end * cols)] }
        return out
    }

    /// Columns of an (H, T) matrix in `layout` order: (H, n).
    public static func columns(_ x: [Float], rows h: Int, total t: Int, _ layout: Layout) -> [Float] {
        var out = [Float]()
        for r in 0..<h { for s in layout { out += x[(r * t + s.start)..<(r * t + s.end)] } }
        return out
    }

    /// The single-GPU attention: the flash kernel once over all T tokens. Returns out (T, H·D) and lse (H, T) as
    /// fp32, and the median seconds of `repeats` calls (device events).
    public func reference(on gpu: GPU, repeats: Int) throws -> (out: [Float], lse: [Float], seconds: Double) {
        try gpu.loadContextParallelKernels()
        let stream = try GPUStream(gpu)
        let qb = try gpu.bf16(try gpu.upload(q)), kvb = try gpu.bf16(try gpu.upload(kv))
        let out = try gpu.alloc(seq * heads * headDim, elementSize: 2), lse = try gpu.alloc(heads * seq)
        var times = [Double]()
        for _ in 0..<max(1, repeats) {
            let start = try stream.record(timing: true)
            try gpu.flashAttention(
                q: qb.pointer, qStride: heads * headDim, k: kvb.pointer, v: kvb.at(kvHeads * headDim),
                kvStride: 2 * kvHeads * headDim, out: out.pointer, outStride: heads * headDim, lse: lse.pointer,
                tokens: seq, keys: seq, heads: heads, kvHeads: kvHeads, headDim: headDim, causal: true, start: 0,
                stream: stream)
            times.append(try stream.record(timing: true).seconds(since: start))
        }
        try stream.synchronize()
        return (try gpu.downloadBF16(out), try gpu.download(lse), times.sorted()[times.count / 2])
    }

    /// One rank: its shards uploaded once, the program run `repeats` times (the first one, untimed, warms the
    /// kernels up), each run between barriers and timed on the host from the first barrier to both streams finishing.
    /// Returns [max |Δout|, max |out_ref|, max |Δlse|, max |lse_ref|, bytes sent, score entries, median seconds,
    /// elements outside tolerance]; with no reference the first four and the last are 0.
    public func runRank(
        backend: GPUCPBackend, reference: (out: [Float], lse: [Float])?, repeats: Int
    ) throws -> [Double] {
        let r = backend.rank, layout = plan.layouts[r], n = Sharding.tokenCount(layout)
        let hd = heads * headDim, kvd = 2 * kvHeads * headDim
        let qr = GPUCPCheck.rows(q, cols: hd, layout), kvr = GPUCPCheck.rows(kv, cols: kvd, layout)
        // The program never writes q or kv: one upload serves every run.
        let qm = try backend.upload(qr, rows: n, cols: hd, bf16: true)
        let kvm = try backend.upload(kvr, rows: n, cols: kvd, bf16: true)
        var times = [Double](), stats = [Double](repeating: 0, count: 8)
        for i in 0...max(1, repeats) {
            try backend.compute.synchronize()
            try backend.exchanges.barrier()
            let t0 = ContinuousClock.now
            let bytesBefore = backend.bytesSent
            let res = try deviceContextParallel(plan: plan, headDim: headDim, q: qm, kv: kvm, backend: backend)
            try backend.compute.synchronize(); try backend.exchangeStream.synchronize()
            try backend.exchanges.barrier()
            if i > 0 { times.append(secondsSince(t0)) }
            stats[4] = Double(backend.bytesSent - bytesBefore); stats[5] = Double(res.scoreEntries)
            if i == max(1, repeats), let ref = reference {
                let out = try backend.download(res.out), lse = try backend.download(res.lse)
                let eo = GPUCPCheck.rows(ref.out, cols: hd, layout)
                let el = GPUCPCheck.columns(ref.lse, rows: heads, total: seq, layout)
                let co = closeness(out, eo, .bf16), cl = closeness(lse, el, .fp32Block)
                stats[0] = Double(co.maxAbsDiff); stats[1] = Double(co.maxAbsRef)
                stats[2] = Double(cl.maxAbsDiff); stats[3] = Double(cl.maxAbsRef)
                stats[7] = Double(co.misses + cl.misses + (co.shapeMismatch == nil && cl.shapeMismatch == nil ? 0 : 1))
            }
            try backend.release()
        }
        stats[6] = times.sorted()[times.count / 2]
        return stats
    }

    /// The JSON line (keys sorted): `eaglet cp`'s keys — strategy, world, ulysses, ring, mpi, nccl, max_abs_error,
    /// max_rel_error (out and lse normwise, the larger), bytes_per_rank, bytes_formula (chapter 13's formula with
    /// bf16 inputs, `deviceForwardBytesPerRank`), flops_per_rank, imbalance — and the device's: device,
    /// ranks_on_one_gpu, flash (the kernel variant), seconds (median wall time of one run), single_gpu_seconds (the
    /// one kernel over T), scaling_efficiency (single ÷ (seconds × W), null when the ranks share one GPU),
    /// misses (elements outside tolerance), reference (false when it was skipped), overlap (false: --no-overlap).
    public func report(
        _ stats: [[Double]], transport: CPTransport, onOneGPU: Bool, device: String, flash: String,
        singleSeconds: Double?, overlap: Bool = true
    ) throws -> String {
        let seconds = stats.map { $0[6] }.max() ?? 0
        var obj = CPRankSummary(stats, headDim: headDim).keys(
            plan: plan, transport: transport, bytesFormula: plan.deviceForwardBytesPerRank(headDim: headDim))
        let extra: [String: Any] = [
            "device": device, "ranks_on_one_gpu": onOneGPU, "flash": flash, "seconds": seconds,
            "misses": Int(stats.map { $0[7] }.reduce(0, +)), "reference": singleSeconds != nil,
            "seq": seq, "heads": heads, "kv_heads": kvHeads, "head_dim": headDim, "overlap": overlap
        ]
        obj.merge(extra) { _, new in new }
        if let s = singleSeconds {
            obj["single_gpu_seconds"] = s
            if !onOneGPU { obj["scaling_efficiency"] = s / (seconds * Double(plan.world)) }
        }
        return String(decoding: try JSON.serialize(obj), as: UTF8.self)
    }
}
