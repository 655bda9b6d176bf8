// Linear + cross-entropy, forward and backward together, naive and fused (docs/spec.md §8.1: Liger's
// LigerFusedLinearCrossEntropyLoss as Eagle modified it to take a per-token loss weight).
//
// Inputs: hidden (T, C), lm_head weight (V, C), labels (T) with `ignoreIndex` marking tokens without a
// target, optional loss weights w (T). Logits z_t = W h_t (V). For a valid token, ce_t = lse(z_t) − z_t[y_t].
//     without weights: loss = Σ_valid ce_t / n_valid          (PyTorch reduction "mean")
//     with weights:    loss = Σ_valid w_t · ce_t               (Eagle: reduction "sum" of pre-normalised weights)
// Gradient of the logits: dz_t = s_t · (softmax(z_t) − onehot(y_t)) with s_t = 1/n_valid or w_t (0 for
// ignored tokens); then grad_hidden = dz W (T, C) and grad_weight = dzᵀ hidden (V, C).
// With no valid token the loss is 0 and the gradients are 0 (PyTorch's mean would give NaN).
//
// * naive: logits (T, V), probabilities (T, V) and dlogits (T, V) each materialised — 3·T·V floats
//   beyond the inputs and outputs (about 7.5 GB at T = 4096, V = 151936).
// * fused: walks the tokens in chunks of `chunkRows`; for each chunk it computes the logits (rows, V)
//   into one reused buffer, turns them into dlogits in place (softmax, minus one-hot, times s_t), and
//   at once adds dz W into grad_hidden's rows and dzᵀ h into grad_weight (fp32 accumulation, sgemm
//   with beta = 1). The (T, V) logits never exist: extra memory is chunkRows·V floats.
//   Liger picks chunkRows = next_pow2(⌈T / ⌈V / C⌉⌉) to bound GPU memory (32 at T = 4096); on a CPU
//   small chunks re-stream the 0.5 GB lm_head through the cache once per chunk, so the default here is
//   256 rows (≈ 155 MB at V = 151936), still a few percent of the naive figure.
// Not here: bf16 logits, label smoothing, z-loss, softcapping.
import Foundation
import Tensor

/// Loss and gradients of linear + cross-entropy.
public struct LinearCrossEntropyResult: Sendable {
    public var loss: Float
    /// d loss / d hidden, (T, C).
    public var gradInput: Tensor
    /// d loss / d weight, (V, C).
    public var gradWeight: Tensor
}

/// Per-token gradient scale s_t: 1/n_valid (mean) or the given weight; 0 for ignored tokens.
func tokenScales(labels: [Int], lossWeights: [Float]?, ignoreIndex: Int, vocab v: Int) -> [Float] {
    let valid = labels.map { $0 != ignoreIndex }
    for (i, y) in labels.enumerated() where valid[i] {
        precondition(y >= 0 && y < v, "linearCrossEntropy: label \(y) at token \(i) is outside 0..<\(v)")
    }
    if let w = lossWeights {
        precondition(w.count == labels.count, "linearCrossEntropy: \(w.count) loss weights for \(labels.count) tokens")
        return labels.indices.map { valid[$0] ? w[$0] : 0 }
    }
    let n = valid.filter { $0 }.count
    return valid.map { $0 && n > 0 ? 1 / Float(n) : 0 }
}

/// Softmax of one logit row into `out` (may alias `z`), returning lse (log-sum-exp, accumulated in Double).
@inline(__always)
func softmaxRow(_ z: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ v: Int) -> Float {
    var m = -Float.infinity
    for j in 0..<v { m = max(m, z[j]) }
    var sum: Float = 0
    for j in 0..<v { let e = exp(z[j] - m); out[j] = e; sum += e }
    let inv = 1 / sum
    for j in 0..<v { out[j] *= inv }
    return m + log(sum)
}

private func checkLCE(_ hidden: Tensor, _ weight: Tensor, _ labels: [Int]) -> (Int, Int, Int) {
    precondition(
        hidden.rank == 2 && weight.rank == 2 && hidden.shape[1] == weight.shape[1] && labels.count == hidden.shape[0],
        "linearCrossEntropy: hidden \(hidden.shape), weight \(weight.shape), \(labels.count) labels")
    return (hidden.shape[0], hidden.shape[1], weight.shape[0])
}

/// Linear + cross-entropy with the (T, V) logits, probabilities and logit gradient all materialised.
public func linearCrossEntropyNaive(
    hidden: Tensor, weight: Tensor, labels: [Int], lossWeights: [Float]? = nil,
    ignoreIndex: Int = -100
) -> LinearCrossEntropyResult {
    let (t, c, v) = checkLCE(hidden, weight, labels)
    let s = tokenScales(labels: labels, lossWeights: lossWeights, ignoreIndex: ignoreIndex, vocab: v)
    let logits = Scratch(t * v, zeroed: false), probs = Scratch(t * v, zeroed: false),
        dlogits = Scratch(t * v, zeroed: false)
    var loss = 0.0
    var gi = Tensor(shape: [t, c]), gw = Tensor(shape: [v, c])
    withPtr(hidden) { X in
        withPtr(weight) { W in
            gemm(false, true, t, v, c, 1, X, c, W, c, 0, logits.p, v) // z = h Wᵀ
            for r in 0..<t { // p = softmax(z), loss
                let lse = softmaxRow(logits.p + r * v, probs.p + r * v, v)
                if s[r] != 0 { loss += Double(s[r]) * Double(lse - logits[r * v + labels[r]]) }
            }
            for r in 0..<t { // dz = s · (p − onehot)
                for j in 0..<v { dlogits[r * v + j] = s[r] * (probs[r * v + j] - (j == labels[r] ? 1 : 0)) }
            }
            gi.withUnsafeMutableStorage {
                gemm(false, false, t, c, v, 1, dlogits.p, v, W, c, 0, $0.baseAddress!, c)
            }
            gw.withUnsafeMutableStorage {
                gemm(true, false, v, c, t, 1, dlogits.p, v, X, c, 0, $0.baseAddress!, c)
            }
        }
    }
    return LinearCrossEntropyResult(loss: Float(loss), gradInput: gi, gradWeight: gw)
}

/// Linear + cross-entropy in token chunks: never holds the (T, V) logits; extra memory chunkRows·V floats.
public func linearCrossEntropyFused(
    hidden: Tensor, weight: Tensor, labels: [Int], lossWeights: [Float]? = nil,
    ignoreIndex: Int = -100, chunkRows: Int = 256
) -> LinearCrossEntropyResult {
    let (t, c, v) = checkLCE(hidden, weight, labels)
    let s = tokenScales(labels: labels, lossWeights: lossWeights, ignoreIndex: ignoreIndex, vocab: v)
    let rowsMax = max(1, min(chunkRows, t))
    let z = Scratch(rowsMax * v, zeroed: false) // the one logit buffer
    var loss = 0.0
    var gi = Tensor(shape: [t, c]), gw = Tensor(shape: [v, c])
    withPtr(hidden) { X in
        withPtr(weight) { W in
            gi.withUnsafeMutableStorage { GIb in
                gw.withUnsafeMutableStorage { GWb in
                    let GI = GIb.baseAddress!, GW = GWb.baseAddress!
                    var r0 = 0
                    while r0 < t {
                        let rows = min(rowsMax, t - r0)
                        let xc = X + r0 * c
                        gemm(false, true, rows, v, c, 1, xc, c, W, c, 0, z.p, v) // z = h_chunk Wᵀ
                        for i in 0..<rows { // z ← dz in place
                            let r = r0 + i, zr = z.p + i * v
                            if s[r] == 0 { for j in 0..<v { zr[j] = 0 }; continue }
                            let target = zr[labels[r]]
                            let lse = softmaxRow(zr, zr, v)
                            loss += Double(s[r]) * Double(lse - target)
                            zr[labels[r]] -= 1
                            let sr = s[r]
                            for j in 0..<v { zr[j] *= sr }
                        }
                        gemm(false, false, rows, c, v, 1, z.p, v, W, c, 0, GI + r0 * c, c) // grad_hidden rows
                        gemm(true, false, v, c, rows, 1, z.p, v, xc, c, 1, GW, c) // grad_weight += dzᵀ h
                        r0 += rows
                    }
                }
            }
        }
    }
    withExtendedLifetime(z) {}
    return LinearCrossEntropyResult(loss: Float(loss), gradInput: gi, gradWeight: gw)
}
