// The cuBLAS calls of the GPU mirror as plain values, and a CPU emulation of each (docs/spec.md §5.2, chapter 14).
//
// cuBLAS is column-major: a matrix with leading dimension ld stores element (i, j) at [i + j·ld]. Eaglet
// is row-major, and a row-major (R, C) buffer read column-major with ld = C is its transpose (C, R).
// So every row-major product is issued as the column-major product of the transposes:
//     y (M, N) = x (M, K)·Wᵀ           →  yᵀ (N, M) = op_T(W as (K, N)) · x as (K, M)
//     scores_h (T, S) = q_h·k_gᵀ       →  (S, T) = op_T(k_g as (D, S)) · q_h as (D, T), batched over the
//                                         H/Hkv query heads of group g (strideA 0: they share k_g)
//     out_h (T, D) = p_h·v_g           →  (D, T) = v_g as (D, S) · p_h as (S, T)
// where q (T, H, D), k and v (S, Hkv, D) are token-major with row strides qs and ks, so head h's block
// starts at element h·D and its rows are qs apart — no copies, no permutes.
// `GemmCall.emulate` runs a call with naive loops exactly as cuBLAS defines it, so the plan itself —
// every transpose flag, leading dimension, offset and stride — is tested on the CPU against the CPU
// attention (Tests/EagletGPUTests), where no GPU exists.
// What it is not: a BLAS. The emulation is for checking the plan, not for speed.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#endif
#if canImport(Glibc)
import Glibc
#endif

/// One column-major strided-batched product, C_b = op(A_b)·op(B_b) for b < batch (alpha 1, beta 0), with
/// offsets, leading dimensions and strides in elements.
public struct GemmCall: Equatable, Sendable, CustomStringConvertible {
    public var transA: Bool, transB: Bool
    public var m: Int, n: Int, k: Int
    public var aOffset: Int, lda: Int, strideA: Int
    public var bOffset: Int, ldb: Int, strideB: Int
    public var cOffset: Int, ldc: Int, strideC: Int
    public var batch: Int

    public var description: String {
        "gemm(\(transA ? "T" : "N"), \(transB ? "T" : "N"), m \(m), n \(n), k \(k), A+\(aOffset) ld \(lda) stride \(strideA), "
            + "B+\(bOffset) ld \(ldb) stride \(strideB), C+\(cOffset) ld \(ldc) stride \(strideC), batch \(batch))"
    }

    /// y (M, N) = x (M, K)·Wᵀ with W (N, K): A = W, B = x, C = y.
    public static func linear(rows m: Int, out n: Int, in k: Int) -> GemmCall {
        GemmCall(
            transA: true, transB: false, m: n, n: m, k: k, aOffset: 0, lda: k, strideA: 0,
            bOffset: 0, ldb: k, strideB: 0, cOffset: 0, ldc: n, strideC: 0, batch: 1)
    }

    /// Scores (H, T, S) of kv group `g` (its H/Hkv query heads): A = k, B = q, C = scores.
    public static func attentionScores(
        group g: Int, tokens t: Int, keys s: Int, heads h: Int, kvHeads hkv: Int, headDim d: Int,
        qStride: Int, kvStride: Int
    ) -> GemmCall {
        let per = h / hkv, h0 = g * per
        return GemmCall(
            transA: true, transB: false, m: s, n: t, k: d, aOffset: g * d, lda: kvStride, strideA: 0,
            bOffset: h0 * d, ldb: qStride, strideB: d, cOffset: h0 * t * s, ldc: s, strideC: t * s, batch: per)
    }

    /// out (T, H, D) = p·v for kv group `g`: A = v, B = probabilities (H, T, S), C = out.
    public static func attentionValues(
        group g: Int, tokens t: Int, keys s: Int, heads h: Int, kvHeads hkv: Int, headDim d: Int,
        kvStride: Int, outStride: Int
    ) -> GemmCall {
        let per = h / hkv, h0 = g * per
        return GemmCall(
            transA: false, transB: false, m: d, n: t, k: s, aOffset: g * d, lda: kvStride, strideA: 0,
            bOffset: h0 * t * s, ldb: s, strideB: t * s, cOffset: h0 * d, ldc: outStride, strideC: d, batch: per)
    }

    /// The call on the CPU, from cuBLAS's definition: C[i + j·ldc] = Σ_l op(A)(i, l)·op(B)(l, j), with
    /// op(A)(i, l) = A[l + i·lda] when transposed, else A[i + l·lda] (B likewise).
    public func emulate(a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        for p in 0..<batch {
            let ap = a + aOffset + p * strideA, bp = b + bOffset + p * strideB, cp = c + cOffset + p * strideC
            for j in 0..<n {
                for i in 0..<m {
                    var acc: Float = 0
                    for l in 0..<k {
                        let av = transA ? ap[l + i * lda] : ap[i + l * lda]
                        let bv = transB ? bp[j + l * ldb] : bp[l + j * ldb]
                        acc += av * bv
                    }
                    cp[i + j * ldc] = acc
                }
            }
        }
    }
}

/// CPU twins of what the GPU mirror runs, built from the same plan: the cuBLAS calls emulated and the
/// softmax kernel's rule written again in Swift.
public enum GPUPlanReference {
    /// `softmax_rows`: row r is query (r mod T) at position p0 + (r mod T); keys past it get 0 when causal.
    public static func softmaxRows(
        _ s: inout [Float], tokens t: Int, keys n: Int, scale: Float, causal: Bool, start p0: Int
    ) {
        for r in 0..<(s.count / n) {
            let limit = causal ? min(n, p0 + r % t + 1) : n
            var m = -Float.infinity
            for j in 0..<limit { m = max(m, s[r * n + j] * scale) }
            var sum: Float = 0
            for j in 0..<limit { let e = Float(exp(Double(s[r * n + j] * scale - m))); s[r * n + j] = e; sum += e }
            for j in 0..<n { s[r * n + j] = j < limit ? s[r * n + j] / sum : 0 }
        }
    }

    /// Attention by the GPU plan on the CPU: q (T, H, D) rows `qStride` apart, k/v (S, Hkv, D) rows
    /// `kvStride` apart → out (T, H, D) rows `outStride` apart.
    public static func attention(
        q: [Float], qStride: Int, k: [Float], v: [Float], kvStride: Int, outStride: Int,
        tokens t: Int, keys s: Int, heads h: Int, kvHeads hkv: Int, headDim d: Int,
        causal: Bool, start p0: Int
    ) -> [Float] {
        var scores = [Float](repeating: 0, count: h * t * s)
        var out = [Float](repeating: 0, count: t * outStride)
        for g in 0..<hkv {
            GemmCall.attentionScores(
                group: g, tokens: t, keys: s, heads: h, kvHeads: hkv, headDim: d, qStride: qStride, kvStride: kvStride
            )
            .emulate(a: k, b: q, c: &scores)
        }
        softmaxRows(&scores, tokens: t, keys: s, scale: 1 / Float(d).squareRoot(), causal: causal, start: p0)
        for g in 0..<hkv {
            GemmCall.attentionValues(
                group: g, tokens: t, keys: s, heads: h, kvHeads: hkv, headDim: d, kvStride: kvStride,
                outStride: outStride
            )
            .emulate(a: v, b: scores, c: &out)
        }
        return out
    }
}
