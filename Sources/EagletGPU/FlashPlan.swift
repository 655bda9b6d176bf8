// The flash-attention kernels' algorithm on the CPU, tile for tile (KernelsBF16.swift, KernelsHopper.swift,
// chapter 14).
//
// What it is: the same blocks of BR = 128 queries, the same tiles of BC keys (64 for the mma.sync kernel, 128
// for the Hopper one; only those a causal
// block can see), the same online softmax in the log2 domain — m' = max(m, rowmax(S)·scale·log2e),
// P = 2^(S·scale·log2e − m'), l = l·2^(m − m') + rowsum(P), O = O·2^(m − m') + bf16(P)·V — the same
// bf16 rounding of P and of the output, and LSE = (m + log2 l)·ln 2. The products inside a tile are summed
// in order here and by mma.sync in its own order on the GPU, so the two agree to fp32 rounding, not bits.
// Tested against attention written out in Double (Tests/EagletGPUTests), where no GPU exists: it checks the
// kernel's plan — masks, the cache offset p0, GQA head mapping, strides, tiles skipped, the LSE formula.
// What it is not: fast.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Tensor

public enum FlashPlan {
    /// Query rows per block and keys per tile, as in the mma.sync kernel (the Hopper kernel's tiles are
    /// `hopperTileKeys`).
    public static let blockRows = KernelSourceBF16.blockRows, tileKeys = KernelSourceBF16.tileKeys
    public static let hopperTileKeys = KernelSourceHopper.tileKeys

    /// Key tiles a block of queries t0 ..< t0 + BR loads: keys < min(S, p0 + t0 + BR) when causal, else < S.
    public static func tiles(
        blockStart t0: Int, keys s: Int, causal: Bool, start p0: Int, tileKeys: Int = tileKeys
    ) -> Int {
        let end = causal ? min(s, p0 + t0 + blockRows) : s
        return (max(end, 0) + tileKeys - 1) / tileKeys
    }

    /// Attention by the kernel's plan. q (T, ·) rows `qStride` apart, head h at columns h·D ..< (h+1)·D;
    /// k, v (S, ·) rows `kvStride` apart, kv head g at g·D; values are taken as given (round them to bf16
    /// first to mirror the device). Returns out (T, H·D) rounded to bf16 and lse (H, T).
    public static func attention(
        q: [Float], qStride: Int, k: [Float], v: [Float], kvStride: Int, tokens t: Int, keys s: Int,
        heads h: Int, kvHeads hkv: Int, headDim d: Int, causal: Bool, start p0: Int, tileKeys: Int = tileKeys
    ) -> (out: [Float], lse: [Float]) {
        let scaleLog2 = (1 / Float(d).squareRoot()) * Float(1.4426950408889634)
        var out = [Float](repeating: 0, count: t * h * d)
        var lse = [Float](repeating: 0, count: h * t)
        let blocks = (t + blockRows - 1) / blockRows
        for head in 0..<h {
            let g = head / (h / hkv)
            for b in 0..<blocks {
                let t0 = b * blockRows
                let tiles = tiles(blockStart: t0, keys: s, causal: causal, start: p0, tileKeys: tileKeys)
                for row in t0..<min(t, t0 + blockRows) {
                    var m = -Float.infinity, l: Float = 0
                    var o = [Float](repeating: 0, count: d)
                    var scores = [Float](repeating: 0, count: tileKeys)
                    for n in 0..<tiles {
                        var rowMax = -Float.infinity
                        for c in 0..<tileKeys {
                            let j = n * tileKeys + c
                            if j >= s || (causal && j > p0 + row) {
                                scores[c] = -.infinity
                                continue
                            }
                            var dot: Float = 0
                            for e in 0..<d { dot += q[row * qStride + head * d + e] * k[j * kvStride + g * d + e] }
                            scores[c] = dot
                            rowMax = max(rowMax, dot)
                        }
                        let mNew = max(m, rowMax * scaleLog2)
                        let base = mNew == -.infinity ? 0 : mNew
                        let alpha = exp2(m - base)
                        m = mNew
                        var rowSum: Float = 0
                        for e in 0..<d { o[e] *= alpha }
                        for c in 0..<tileKeys {
                            let p = exp2(scores[c] * scaleLog2 - base)
                            rowSum += p
                            let j = n * tileKeys + c
                            guard p != 0, j < s else { continue }
                            let pb = bf16ToFloat(floatToBF16(p))
                            for e in 0..<d { o[e] += pb * v[j * kvStride + g * d + e] }
                        }
                        l = l * alpha + rowSum
                    }
                    let inv: Float = l > 0 ? 1 / l : 0
                    for e in 0..<d { out[row * h * d + head * d + e] = bf16ToFloat(floatToBF16(o[e] * inv)) }
                    lse[head * t + row] = l > 0 ? (m + log2(l)) * Float(0.6931471805599453) : -.infinity
                }
            }
        }
        return (out, lse)
    }
}
