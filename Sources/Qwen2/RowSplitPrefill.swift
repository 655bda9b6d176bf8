// Prefill with the prompt's tokens split over threads (docs/spec.md §5; docs/benchmarks.md "lm").
//
// What it is: with N threads, token rows [p·T/N, (p+1)·T/N) belong to worker p, which runs every decoder
// layer on its rows alone — the same `Qwen2DecoderLayer` body as every other path, on one thread, with
// OpenBLAS held to one thread. Rows of a layer are independent except in attention, where a query reads
// the keys and values of every earlier row, some computed by another worker. So the attention core of
// this path, `RowSplitAttention`, writes the worker's keys and values into the layer's (Hkv, T, D)
// buffers and meets the other workers at one barrier per layer before it attends; with causal attention
// a worker reads keys only up to its last row.
// Why: threading each product inside OpenBLAS left everything between the products on one core and
// made the two cores meet at every one of the seven products of a layer; measured, the second core gave
// 1.47× (docs/benchmarks.md). The arithmetic is the serial path's; products over fewer rows may round
// differently, so results equal it within fp32-block, not bit for bit.
// What it is not: used for decode (one row), for prompts shorter than 32 rows a worker, when a cache
// already holds tokens, or when the caller asks for every layer's output (those take the serial path).
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
import _Essentials

/// The layers' key and value buffers (Hkv, T, D) that every worker writes its own rows of and reads the
/// others' from after the barrier, and the output rows (T, C).
// @unchecked: the pointers are allocated and freed by `hiddenStatesRowSplit` around the workers' lifetime;
// each worker writes disjoint rows, and reads other rows only after the barrier that follows their writes.
struct SharedRows: @unchecked Sendable {
    let keys: [UnsafeMutablePointer<Float>], values: [UnsafeMutablePointer<Float>]
    let output: UnsafeMutablePointer<Float>
}

/// The row-split prefill's attention core: worker rows lo ..< hi of T write their keys and values into the
/// layer's shared buffers, wait for every worker, then attend causally to keys 0 ..< hi.
struct RowSplitAttention: AttentionCore {
    let shared: SharedRows, barrier: ThreadBarrier
    let lo: Int, hi: Int, tokens: Int

    mutating func attend(layer: Int, q: Tensor, k: Tensor, v: Tensor, heads s: AttentionHeads, compute: Compute)
        -> Tensor
    {
        let n = hi - lo, t = tokens, h = s.heads, hkv = s.kvHeads, d = s.headDim
        let kb = shared.keys[layer], vb = shared.values[layer]
        k.storage.withUnsafeBufferPointer { K in
            v.storage.withUnsafeBufferPointer { V in
                for r in 0..<n {
                    for g in 0..<hkv {
                        (kb + (g * t + lo + r) * d).update(from: K.baseAddress! + (r * hkv + g) * d, count: d)
                        (vb + (g * t + lo + r) * d).update(from: V.baseAddress! + (r * hkv + g) * d, count: d)
                    }
                }
            }
        }
        let qh = headMajor(q, heads: h, headDim: d)
        barrier.wait() // every earlier row's keys and values are written
        return tokenMajor(
            attendInPlace(
                qh, k: kb, v: vb, kvHeads: hkv, keys: hi, kvHeadStride: t * d,
                offset: AttentionOffsets(query: lo, key: 0), threads: 1))
    }
}

extension Qwen2ForCausalLM {
    /// Rows per worker below which the split does not pay (the products get too thin).
    static let minimumRowsPerWorker = 32

    /// How many workers a prefill of `t` tokens would use with `threads` threads (1: one worker, all rows).
    static func rowSplitWorkers(tokens t: Int, threads: Int) -> Int {
        max(1, min(threads, t / minimumRowsPerWorker))
    }

    /// The decoder over inputs embeds (T, C) at positions 0 ..< T, rows split over `workers` threads, each
    /// running the layers on its rows with `Compute.fast(threads: 1)`. Returns the final normed hidden states
    /// (T, C) and, per layer, the keys and values (Hkv, T, D).
    public func hiddenStatesRowSplit(_ x: Tensor, workers: Int) -> (h: Tensor, keys: [[Float]], values: [[Float]]) {
        precondition(
            workers >= 1 && workers <= x.shape[0], "hiddenStatesRowSplit: \(workers) workers for \(x.shape[0]) rows")
        let t = x.shape[0], c = config.hiddenSize, hkv = config.numKeyValueHeads, d = config.headDim
        let shared = SharedRows(
            keys: layers.map { _ in .allocate(capacity: hkv * t * d) },
            values: layers.map { _ in .allocate(capacity: hkv * t * d) },
            output: .allocate(capacity: t * c))
        defer {
            shared.keys.forEach { $0.deallocate() }; shared.values.forEach { $0.deallocate() };
            shared.output.deallocate()
        }
        let barrier = ThreadBarrier(parties: workers)

        BLAS.use(threads: 1)
        runConcurrently(workers) { p in
            let lo = t * p / workers, hi = t * (p + 1) / workers
            var core = RowSplitAttention(shared: shared, barrier: barrier, lo: lo, hi: hi, tokens: t)
            let h = self.hiddenStates(
                x.slice(dim: 0, lo..<hi), positions: Array(lo..<hi), core: &core,
                compute: .fast(threads: 1))
            h.storage.withUnsafeBufferPointer {
                (shared.output + lo * c).update(from: $0.baseAddress!, count: (hi - lo) * c)
            }
        }
        let out = Tensor(shape: [t, c], storage: Array(UnsafeBufferPointer(start: shared.output, count: t * c)))
        let keys = shared.keys.map { Array(UnsafeBufferPointer(start: $0, count: hkv * t * d)) }
        let values = shared.values.map { Array(UnsafeBufferPointer(start: $0, count: hkv * t * d)) }
        return (out, keys, values)
    }
}
