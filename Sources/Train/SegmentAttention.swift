// Attention within each packed segment, read and written in place in token-major buffers: the training step's fast
// path for short segments (the tiles of the tower, the samples of a packed decoder step). docs/spec.md §11.2.
//
// Per segment of n rows and head h (kv head g = h / (H / Hkv)), with Q_h, K_g, V_g the (n, D) column blocks of the
// token-major buffers at their row strides (no head-major copies):
//     S = scale · Q_h K_gᵀ (n, n), causal: S_ij = −∞ for j > i
//     P = softmax_rows(S),  lse_i = m_i + log Σ_j e^(S_ij − m_i),  O_h = P V_g
// and the backward from the forward's O and lse (P is recomputed, never kept):
//     P = e^(S − lse),  Δ_i = Σ_d dO_h[i, d]·O_h[i, d]
//     dV_g += Pᵀ dO_h,  dP = dO_h V_gᵀ,  dS = P ∘ (dP − Δ),  dQ_h = scale · dS K_g,  dK_g += scale · dSᵀ Q_h.
// The whole (n, n) score block is held (two of them in the backward): segments up to
// `TrainingModel.wholeSegmentRows` rows (1024 by default); a step with a longer one goes through the blockwise
// kernels (`attendSegments`), which stay as the reference path.
// Segments are shared out over threads by cost (n²), each thread with its own scratch, OpenBLAS single-threaded.
import Dispatch
import Foundation
import QwenAttention
import Tensor
import _CBLAS

/// A token-major buffer: row t, column c at `base[t · stride + c]`.
struct Rows {
    var base: UnsafeMutablePointer<Float>
    var stride: Int
    /// The view shifted right by `columns` (a head's, or k's and v's blocks of a fused qkv buffer).
    func columns(from c: Int) -> Rows { Rows(base: base + c, stride: stride) }
}

enum SegmentAttention {
    /// Longest segment held as one (n, n) block by default (`TrainingModel.wholeSegmentRows`).
    static let maxRows = 1024

    /// O (token-major, into `out`) and lse (T, H) of every segment, from q, k, v in token-major buffers.
    static func forward(
        q: Rows, k: Rows, v: Rows, out: Rows, lse: UnsafeMutablePointer<Float>, segments: [Range<Int>],
        heads H: Int, kvHeads Hkv: Int, headDim D: Int, causal: Bool, threads: Int
    ) {
        let scale = 1 / Float(D).squareRoot(), rep = H / Hkv
        forEachSegment(segments, threads: threads) { i, scratch in
            let n = segments[i].count, lo = segments[i].lowerBound
            let s = scratch.allocate(n * n + n)
            for h in 0..<H {
                let g = h / rep
                let qh = q.base + lo * q.stride + h * D, kg = k.base + lo * k.stride + g * D
                let vg = v.base + lo * v.stride + g * D
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(D), scale, qh,
                    Int32(q.stride), kg, Int32(k.stride), 0, s, Int32(n))
                // e^(S − m) unnormalised; O's rows are divided by their sums after the product (n·D divisions
                // instead of n²)
                let sums = s + n * n
                for r in 0..<n {
                    let row = s + r * n, visible = causal ? r + 1 : n
                    let m = rowMax(row, visible)
                    let sum = expInPlaceAndSum(row, visible, minus: m)
                    if visible < n { for j in visible..<n { row[j] = 0 } }
                    sums[r] = sum
                    lse[(lo + r) * H + h] = m + log(sum)
                }
                let oh = out.base + lo * out.stride + h * D
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(D), Int32(n), 1, s, Int32(n), vg,
                    Int32(v.stride), 0, oh, Int32(out.stride))
                for r in 0..<n {
                    let o = oh + r * out.stride, inv = 1 / sums[r]
                    for c in 0..<D { o[c] *= inv }
                }
            }
        }
    }

    /// dq, dk, dv (token-major, into the given buffers, which must hold zeros in dk's and dv's columns) of every
    /// segment from dO, the forward's q, k, v, O and lse.
    static func backward(
        dOut: Rows, q: Rows, k: Rows, v: Rows, out: Rows, lse: UnsafePointer<Float>, dq: Rows, dk: Rows, dv: Rows,
        segments: [Range<Int>], heads H: Int, kvHeads Hkv: Int, headDim D: Int, causal: Bool, threads: Int
    ) {
        let scale = 1 / Float(D).squareRoot(), rep = H / Hkv
        forEachSegment(segments, threads: threads) { i, scratch in
            let n = segments[i].count, lo = segments[i].lowerBound
            let p = scratch.allocate(2 * n * n + n), dp = p + n * n, delta = dp + n * n
            for h in 0..<H {
                let g = h / rep
                let qh = q.base + lo * q.stride + h * D, kg = k.base + lo * k.stride + g * D
                let vg = v.base + lo * v.stride + g * D, doh = dOut.base + lo * dOut.stride + h * D
                let oh = out.base + lo * out.stride + h * D
                for r in 0..<n {
                    let a = doh + r * dOut.stride, b = oh + r * out.stride
                    var acc: Float = 0
                    for c in 0..<D { acc += a[c] * b[c] }
                    delta[r] = acc
                }
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(D), scale, qh,
                    Int32(q.stride), kg, Int32(k.stride), 0, p, Int32(n))
                for r in 0..<n {
                    let row = p + r * n, visible = causal ? r + 1 : n, l = lse[(lo + r) * H + h]
                    for j in 0..<visible { row[j] = fastExp(row[j] - l) }
                    if visible < n { for j in visible..<n { row[j] = 0 } }
                }
                // dV_g += Pᵀ dO_h
                cblas_sgemm(
                    CblasRowMajor, CblasTrans, CblasNoTrans, Int32(n), Int32(D), Int32(n), 1, p, Int32(n), doh,
                    Int32(dOut.stride), 1, dv.base + lo * dv.stride + g * D, Int32(dv.stride))
                // dP = dO_h V_gᵀ, then dS = P ∘ (dP − Δ) in dP's place
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(D), 1, doh,
                    Int32(dOut.stride), vg, Int32(v.stride), 0, dp, Int32(n))
                for r in 0..<n {
                    let pr = p + r * n, dr = dp + r * n, di = delta[r]
                    for j in 0..<n { dr[j] = pr[j] * (dr[j] - di) }
                }
                // dQ_h = scale · dS K_g;  dK_g += scale · dSᵀ Q_h
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(D), Int32(n), scale, dp, Int32(n), kg,
                    Int32(k.stride), 0, dq.base + lo * dq.stride + h * D, Int32(dq.stride))
                cblas_sgemm(
                    CblasRowMajor, CblasTrans, CblasNoTrans, Int32(n), Int32(D), Int32(n), scale, dp, Int32(n), qh,
                    Int32(q.stride), 1, dk.base + lo * dk.stride + g * D, Int32(dk.stride))
            }
        }
    }

    /// Runs `body(i, scratch)` for every segment index i, the segments shared out over `threads` in contiguous
    /// groups of about equal cost (n² each); each group has its own scratch, reused from segment to segment.
    static func forEachSegment(_ segments: [Range<Int>], threads: Int, _ body: (Int, Scratch) -> Void) {
        let cost = segments.map { $0.count * $0.count }, total = cost.reduce(0, +)
        let parts = min(threads, segments.count, max(1, total / (64 * 64 * 8)))
        // Cut the list where the running cost passes each part's share.
        var cuts = [0], running = 0
        for (i, c) in cost.enumerated() {
            running += c
            if cuts.count < parts && running * parts >= total * cuts.count { cuts.append(i + 1) }
        }
        while cuts.count <= parts { cuts.append(segments.count) }
        cuts[parts] = segments.count
        let bounds = cuts
        BLAS.use(threads: 1)
        if parts == 1 {
            let scratch = Scratch()
            for i in segments.indices { body(i, scratch) }
            return
        }
        // nonisolated(unsafe): each part runs its own segments, which write disjoint rows of the outputs (and, in
        // the backward, the kv heads of their own rows).
        nonisolated(unsafe) let disjoint = body
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let scratch = Scratch()
            for i in bounds[p]..<bounds[p + 1] { disjoint(i, scratch) }
        }
    }

    /// A growing float buffer owned by one thread.
    final class Scratch {
        private var buffer = UnsafeMutablePointer<Float>.allocate(capacity: 0)
        private var capacity = 0
        /// At least `count` floats (contents undefined), valid until the next call.
        func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
            if count > capacity {
                buffer.deallocate()
                buffer = .allocate(capacity: count)
                capacity = count
            }
            return buffer
        }
        deinit { buffer.deallocate() }
    }
}
