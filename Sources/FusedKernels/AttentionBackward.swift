// The backward of causal grouped-query attention: naive (full score matrices) and blockwise (scores
// recomputed block by block from the forward's log-sum-exp, FlashAttention-2's backward). The forward is
// QwenAttention's `attentionNaive` / `blockwiseAttention` (docs/spec.md §5.2); this file does not repeat it.
//
// With S = q kᵀ · scale (masked), P = softmax(S) = exp(S − lse), O = P v and the upstream dO:
//     dV = Pᵀ dO,   dP = dO vᵀ,   dS = P ∘ (dP − Δ),   Δ_i = Σ_j P_ij dP_ij = Σ_c dO_ic O_ic,
//     dQ = dS k · scale,   dK = dSᵀ q · scale.
// Grouped heads: query head h reads kv head g = h ÷ (H / Hkv), so dK and dV of g sum over its H/Hkv heads.
// Positions and the causal rule are the forward's (`AttentionOffsets`): key j is visible to query i when
// offsets.key + j ≤ offsets.query + i.
//
// * `attentionBackwardNaive`: per head S, P, dP and dS are whole (T, S) buffers (4·T·S floats).
// * `blockwiseAttentionBackward`: Δ (H·T) once, then per block of ≤ queryBlock rows and ≤ keyBlock keys
//   it recomputes P = exp(S − lse) and forms dP and dS in two queryBlock × keyBlock buffers, adding into
//   dQ, dK, dV directly. Key blocks wholly in a query block's future are skipped. Extra memory is
//   H·T + 2·queryBlock·keyBlock floats — O(T), so T = 32K costs kilobytes of scratch, not gigabytes.
// Not here: dropout, sliding windows, varlen packing, threads over heads.
import Foundation
import QwenAttention
import Tensor

/// Gradients of attention with respect to q (H, T, D), k and v (Hkv, S, D).
public struct AttentionGradients: Sendable {
    public var dq: Tensor
    public var dk: Tensor
    public var dv: Tensor
}

private func attnShapes(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ dOut: Tensor) -> (Int, Int, Int, Int, Int) {
    precondition(
        q.rank == 3 && k.rank == 3 && k.shape == v.shape && q.shape[2] == k.shape[2] && dOut.shape == q.shape
            && q.shape[0] % k.shape[0] == 0,
        "attention backward: q \(q.shape), k \(k.shape), v \(v.shape), dOut \(dOut.shape)")
    return (q.shape[0], q.shape[1], q.shape[2], k.shape[0], k.shape[1])
}

/// Naive backward: recomputes the full softmax per head and materialises S, P, dP, dS (each T × S).
public func attentionBackwardNaive(
    q: Tensor, k: Tensor, v: Tensor, dOut: Tensor, causal: Bool,
    offsets: AttentionOffsets = .zero, scale: Float? = nil
) -> AttentionGradients {
    let (h, t, d, hkv, s) = attnShapes(q, k, v, dOut)
    let sc = scale ?? 1 / Float(d).squareRoot()
    let rep = h / hkv
    var dq = Tensor(shape: [h, t, d]), dk = Tensor(shape: [hkv, s, d]), dv = Tensor(shape: [hkv, s, d])
    let S = Scratch(t * s, zeroed: false), P = Scratch(t * s, zeroed: false)
    let dP = Scratch(t * s, zeroed: false), dS = Scratch(t * s, zeroed: false)
    withPtr(q) { Q in
        withPtr(k) { K in
            withPtr(v) { V in
                withPtr(dOut) { DO in
                    dq.withUnsafeMutableStorage { DQb in
                        dk.withUnsafeMutableStorage { DKb in
                            dv.withUnsafeMutableStorage { DVb in
                                for head in 0..<h {
                                    let g = head / rep
                                    let qh = Q + head * t * d, doh = DO + head * t * d, kh = K + g * s * d,
                                        vh = V + g * s * d
                                    gemm(false, true, t, s, d, sc, qh, d, kh, d, 0, S.p, s) // S = q kᵀ · scale
                                    if causal {
                                        for i in 0..<t {
                                            for j in 0..<s where offsets.key + j > offsets.query + i {
                                                S[i * s + j] = -.infinity
                                            }
                                        }
                                    }
                                    for i in 0..<t { // P = softmax(S); empty rows → 0
                                        var m = -Float.infinity
                                        for j in 0..<s { m = max(m, S[i * s + j]) }
                                        if m == -.infinity { for j in 0..<s { P[i * s + j] = 0 }; continue }
                                        var sum: Float = 0
                                        for j in 0..<s { let e = exp(S[i * s + j] - m); P[i * s + j] = e; sum += e }
                                        for j in 0..<s { P[i * s + j] /= sum }
                                    }
                                    gemm(false, true, t, s, d, 1, doh, d, vh, d, 0, dP.p, s) // dP = dO vᵀ
                                    for i in 0..<t { // dS = P ∘ (dP − rowsum(P ∘ dP))
                                        var delta: Float = 0
                                        for j in 0..<s { delta += P[i * s + j] * dP[i * s + j] }
                                        for j in 0..<s { dS[i * s + j] = P[i * s + j] * (dP[i * s + j] - delta) }
                                    }
                                    gemm(
                                        false, false, t, d, s, sc, dS.p, s, kh, d, 0, DQb.baseAddress! + head * t * d, d
                                    ) // dQ
                                    // dK += and dV +=
                                    gemm(true, false, s, d, t, sc, dS.p, s, qh, d, 1, DKb.baseAddress! + g * s * d, d)
                                    gemm(true, false, s, d, t, 1, P.p, s, doh, d, 1, DVb.baseAddress! + g * s * d, d)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return AttentionGradients(dq: dq, dk: dk, dv: dv)
}

/// Blockwise backward from the forward's `out` and `lse` (as returned by `blockwiseAttention`).
/// Shapes: q, out, dOut (H, T, D); k, v (Hkv, S, D); lse (H, T).
public func blockwiseAttentionBackward(
    q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dOut: Tensor,
    causal: Bool, offsets: AttentionOffsets = .zero, scale: Float? = nil,
    queryBlock: Int = 64, keyBlock: Int = 256
) -> AttentionGradients {
    let (h, t, d, hkv, s) = attnShapes(q, k, v, dOut)
    precondition(out.shape == q.shape && lse.shape == [h, t], "attention backward: out \(out.shape), lse \(lse.shape)")
    let sc = scale ?? 1 / Float(d).squareRoot()
    let rep = h / hkv
    let bq = max(1, queryBlock), bk = max(1, keyBlock)
    var dq = Tensor(shape: [h, t, d]), dk = Tensor(shape: [hkv, s, d]), dv = Tensor(shape: [hkv, s, d])
    let delta = Scratch(h * t, zeroed: false)
    let P = Scratch(bq * bk, zeroed: false), dS = Scratch(bq * bk, zeroed: false)
    withPtr(q) { Q in
        withPtr(k) { K in
            withPtr(v) { V in
                withPtr(dOut) { DO in
                    withPtr(out) { O in
                        withPtr(lse) { L in
                            dq.withUnsafeMutableStorage { DQb in
                                dk.withUnsafeMutableStorage { DKb in
                                    dv.withUnsafeMutableStorage { DVb in
                                        let DQ = DQb.baseAddress!, DK = DKb.baseAddress!, DV = DVb.baseAddress!
                                        for r in 0..<(h * t) { // Δ = rowsum(dO ∘ O)
                                            var acc: Float = 0
                                            for c in 0..<d { acc += DO[r * d + c] * O[r * d + c] }
                                            delta[r] = acc
                                        }
                                        for head in 0..<h {
                                            let g = head / rep
                                            let kh = K + g * s * d, vh = V + g * s * d, dkh = DK + g * s * d,
                                                dvh = DV + g * s * d
                                            var q0 = 0
                                            while q0 < t {
                                                let rows = min(bq, t - q0)
                                                let row0 = head * t + q0
                                                let qb = Q + row0 * d, dob = DO + row0 * d, dqb = DQ + row0 * d
                                                let kEnd =
                                                    causal ? max(0, min(s, offsets.query + q0 + rows - offsets.key)) : s
                                                var k0 = 0
                                                while k0 < kEnd {
                                                    let cols = min(bk, kEnd - k0)
                                                    gemm(
                                                        false, true, rows, cols, d, sc, qb, d, kh + k0 * d, d, 0, P.p,
                                                        cols) // S block
                                                    for i in 0..<rows { // P = exp(S − lse)
                                                        let pr = P.p + i * cols, l = L[row0 + i]
                                                        let firstMasked =
                                                            causal
                                                            ? max(0, offsets.query + q0 + i - offsets.key - k0 + 1)
                                                            : cols
                                                        if l == -.infinity { for j in 0..<cols { pr[j] = 0 }; continue }
                                                        let visible = min(cols, firstMasked)
                                                        for j in 0..<visible { pr[j] = fastExp(pr[j] - l) }
                                                        if visible < cols { for j in visible..<cols { pr[j] = 0 } }
                                                    }
                                                    gemm(
                                                        true, false, cols, d, rows, 1, P.p, cols, dob, d, 1,
                                                        dvh + k0 * d, d) // dV += Pᵀ dO
                                                    gemm(
                                                        false, true, rows, cols, d, 1, dob, d, vh + k0 * d, d, 0, dS.p,
                                                        cols) // dP = dO vᵀ
                                                    for i in 0..<rows { // dS = P ∘ (dP − Δ)
                                                        let pr = P.p + i * cols, dr = dS.p + i * cols,
                                                            di = delta[row0 + i]
                                                        for j in 0..<cols { dr[j] = pr[j] * (dr[j] - di) }
                                                    }
                                                    gemm(
                                                        false, false, rows, d, cols, sc, dS.p, cols, kh + k0 * d, d, 1,
                                                        dqb, d) // dQ += dS k · sc
                                                    gemm(
                                                        true, false, cols, d, rows, sc, dS.p, cols, qb, d, 1,
                                                        dkh + k0 * d, d) // dK += dSᵀ q · sc
                                                    k0 += cols
                                                }
                                                q0 += rows
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    withExtendedLifetime((delta, P, dS)) {}
    return AttentionGradients(dq: dq, dk: dk, dv: dv)
}
