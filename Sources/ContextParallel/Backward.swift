// The backward of ring and zigzag attention (docs/spec.md §8.3): dq stays local, dk/dv travel with the kv
// around the ring and come home after W hops.
//
// What it is: `attentionBlockBackward`, the gradient of one (query block, key block) pair given the
// *final* out and lse of the query rows (so blocks are independent and their gradients simply add):
//     P = exp(q·kᵀ·scale − lse) (masked → 0),  dV = Pᵀ·dO,  dP = dO·vᵀ,  Δ_i = Σ_c dO_ic·O_ic,
//     dS = P ∘ (dP − Δ),  dQ = dS·k·scale,  dK = dSᵀ·q·scale
// (query head h reads kv head h ÷ (H/Hkv), so dK/dV sum over a group's heads), and
// `ringAttentionBackward`, which walks the same ring as the forward carrying (k, v, dk, dv).
// What it is not: fused or blockwise in memory (one head's scores at a time); FusedKernels owns that.
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

/// Gradients of causal attention restricted to one key block. q, out, dout (h, m, D); k, v (hkv, s, D);
/// lse (h, m) of the full attention. Returns dq (h, m, D), dk and dv (hkv, s, D).
public func attentionBlockBackward(
    q: Tensor, k: Tensor, v: Tensor, out: Tensor, dout: Tensor, lse: Tensor,
    offsets: AttentionOffsets, scale: Float? = nil
) -> (dq: Tensor, dk: Tensor, dv: Tensor) {
    let h = q.shape[0], m = q.shape[1], d = q.shape[2], hkv = k.shape[0], s = k.shape[1]
    let sc = scale ?? 1 / Float(d).squareRoot()
    let rep = h / hkv
    var dq = [Float](repeating: 0, count: h * m * d)
    var dk = [Float](repeating: 0, count: hkv * s * d), dv = dk
    for head in 0..<h {
        let g = head / rep
        let qh = q.row(head), kh = k.row(g), vh = v.row(g), oh = out.row(head), doh = dout.row(head)
        var p = matmul(qh, kh, transposeB: true) // (m, s)
        for i in 0..<m {
            let l = lse[head, i]
            for j in 0..<s {
                let visible = offsets.key + j <= offsets.query + i && l > -.infinity
                p[flat: i * s + j] = visible ? exp(p.storage[i * s + j] * sc - l) : 0
            }
        }
        let dvh = matmul(p.transposedLast2(), doh) // (s, D)
        var ds = matmul(doh, vh, transposeB: true) // dP (m, s)
        for i in 0..<m {
            var delta: Float = 0
            for c in 0..<d { delta += doh.storage[i * d + c] * oh.storage[i * d + c] }
            for j in 0..<s { ds[flat: i * s + j] = p.storage[i * s + j] * (ds.storage[i * s + j] - delta) }
        }
        let dqh = matmul(ds, kh), dkh = matmul(ds.transposedLast2(), qh)
        for i in 0..<(m * d) { dq[head * m * d + i] = dqh.storage[i] * sc }
        for i in 0..<(s * d) { dk[g * s * d + i] += dkh.storage[i] * sc; dv[g * s * d + i] += dvh.storage[i] }
    }
    return (
        Tensor(shape: [h, m, d], storage: dq), Tensor(shape: [hkv, s, d], storage: dk),
        Tensor(shape: [hkv, s, d], storage: dv)
    )
}

/// Ring / zigzag backward among the ranks of `comm`. q, out, dout (H, n, D), lse (H, n), k, v (Hkv, n, D)
/// are this rank's rows (layout `layouts[comm.rank]`), out/lse from the forward. Returns this rank's
/// dq, dk, dv. The dk/dv buffer travels with the kv block it belongs to and is sent one extra hop at the
/// end, which brings it back to its owner.
public func ringAttentionBackward(
    q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dout: Tensor,
    layouts: [Layout], comm: Communicator
) -> (dq: Tensor, dk: Tensor, dv: Tensor) {
    let w = comm.worldSize, r = comm.rank
    let h = q.shape[0], hkv = k.shape[0], d = q.shape[2]
    var dq = [Float](repeating: 0, count: q.count)
    var kv = k.storage + v.storage
    var dkv = [Float](repeating: 0, count: kv.count)
    let next = (r + 1) % w, prev = (r - 1 + w) % w
    for step in 0..<w {
        let src = (r - step + w) % w
        let nk = Sharding.tokenCount(layouts[src]), half = hkv * nk * d
        let kb = Tensor(shape: [hkv, nk, d], storage: Array(kv[0..<half]))
        let vb = Tensor(shape: [hkv, nk, d], storage: Array(kv[half..<(2 * half)]))
        var qo = 0
        for qs in layouts[r] {
            var ko = 0
            for ks in layouts[src] {
                if visibleScores(query: qs, key: ks) > 0 {
                    let qr = qo..<(qo + qs.count), kr = ko..<(ko + ks.count)
                    let g = attentionBlockBackward(
                        q: q.slice(dim: 1, qr), k: kb.slice(dim: 1, kr), v: vb.slice(dim: 1, kr),
                        out: out.slice(dim: 1, qr), dout: dout.slice(dim: 1, qr), lse: lse.slice(dim: 1, qr),
                        offsets: AttentionOffsets(query: qs.start, key: ks.start))
                    for head in 0..<h {
                        for i in 0..<(qs.count * d) {
                            dq[(head * q.shape[1] + qo) * d + i] += g.dq.storage[head * qs.count * d + i]
                        }
                    }
                    for kh in 0..<hkv {
                        for i in 0..<(ks.count * d) {
                            dkv[(kh * nk + ko) * d + i] += g.dk.storage[kh * ks.count * d + i]
                            dkv[half + (kh * nk + ko) * d + i] += g.dv.storage[kh * ks.count * d + i]
                        }
                    }
                }
                ko += ks.count
            }
            qo += qs.count
        }
        if step < w - 1 {
            let got = comm.sendRecv(kv + dkv, to: next, from: prev)
            kv = Array(got[0..<(got.count / 2)]); dkv = Array(got[(got.count / 2)...])
        }
    }
    if w > 1 { dkv = comm.sendRecv(dkv, to: next, from: prev) } // home: the buffer for rank r arrives from r − 1
    let n = k.shape[1], half = hkv * n * d
    return (
        Tensor(shape: q.shape, storage: dq), Tensor(shape: k.shape, storage: Array(dkv[0..<half])),
        Tensor(shape: v.shape, storage: Array(dkv[half...]))
    )
}

/// Llama3-style all-gather backward (docs/spec.md §8.4): gather (k, v) again, compute dq for the local rows and
/// full-length dk/dv buffers for the prefixes they read, then reduce-scatter the buffers so each rank
/// receives the summed dk/dv of its own tokens.
public func llama3AttentionBackward(
    q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dout: Tensor,
    layouts: [Layout], comm: Communicator
) -> (dq: Tensor, dk: Tensor, dv: Tensor) {
    let r = comm.rank, hkv = k.shape[0], d = k.shape[2], h = q.shape[0], n = q.shape[1]
    let (kFull, vFull) = allGatherKV(k: k, v: v, layouts: layouts, comm: comm)
    let t = kFull.shape[1]
    var dq = [Float](repeating: 0, count: q.count)
    var dkFull = [Float](repeating: 0, count: kFull.count), dvFull = dkFull
    var qo = 0
    for s in layouts[r] {
        let qr = qo..<(qo + s.count), kr = s.sequenceStart..<s.end
        let g = attentionBlockBackward(
            q: q.slice(dim: 1, qr), k: kFull.slice(dim: 1, kr), v: vFull.slice(dim: 1, kr),
            out: out.slice(dim: 1, qr), dout: dout.slice(dim: 1, qr), lse: lse.slice(dim: 1, qr),
            offsets: AttentionOffsets(query: s.start, key: s.sequenceStart))
        for head in 0..<h {
            for i in 0..<(s.count * d) { dq[(head * n + qo) * d + i] += g.dq.storage[head * s.count * d + i] }
        }
        for kh in 0..<hkv {
            for i in 0..<(kr.count * d) {
                dkFull[(kh * t + kr.lowerBound) * d + i] += g.dk.storage[kh * kr.count * d + i]
                dvFull[(kh * t + kr.lowerBound) * d + i] += g.dv.storage[kh * kr.count * d + i]
            }
        }
        qo += s.count
    }
    let dkT = Tensor(shape: kFull.shape, storage: dkFull), dvT = Tensor(shape: kFull.shape, storage: dvFull)
    let mine = comm.reduceScatter(layouts.map { Sharding.shard(dkT, $0).storage + Sharding.shard(dvT, $0).storage })
    let half = hkv * n * d
    return (
        Tensor(shape: q.shape, storage: dq), Tensor(shape: k.shape, storage: Array(mine[0..<half])),
        Tensor(shape: v.shape, storage: Array(mine[half...]))
    )
}
