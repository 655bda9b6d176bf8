// RMSNorm forward and backward, naive and fused (docs/spec.md §8.1: Liger's LigerRMSNorm, casting_mode "llama").
//
// Formula, per token row x (C): rstd = 1 / sqrt(mean(x²) + eps), x̂ = x · rstd, y = x̂ · w.
// Backward with g = dy · w:  dx = rstd · (g − x̂ · mean(g · x̂)),   dw = Σ_rows dy · x̂.
// Statistics are fp32 (all of Eaglet is fp32; "llama" casting means the norm is computed in fp32 and only
// the final product is cast back, which here is the identity).
//
// * `rmsNormNaive` / `rmsNormBackwardNaive`: one pass per formula line, each intermediate a (T, C) or (T)
//   buffer: x², mean, rstd, x̂, then y; in the backward x̂, g, g·x̂, its row mean, then dx and dw.
// * `rmsNormFused` / `rmsNormBackwardFused`: what changes — one read of the row for the sum of squares and
//   one read+write for y; only rstd (T) is kept for the backward. The backward recomputes x̂ on the fly,
//   takes the row dot product in one pass and writes dx and accumulates dw in a second; no (T, C) scratch.
// Not here: multi-threading across rows, bf16 storage.
import Tensor

/// y (T, C) and the saved rstd (T) of RMSNorm, built from separate materialised passes.
public func rmsNormNaive(_ x: Tensor, weight: Tensor, eps: Float) -> (y: Tensor, rstd: Tensor) {
    let (t, c) = (x.shape[0], x.shape[1])
    precondition(x.rank == 2 && weight.count == c, "rmsNorm: x \(x.shape), weight \(weight.shape)")
    let sq = Scratch(t * c), mean = Scratch(t), xhat = Scratch(t * c)
    for i in 0..<(t * c) { sq[i] = x.storage[i] * x.storage[i] } // x²
    for r in 0..<t { var s: Float = 0; for j in 0..<c { s += sq[r * c + j] }; mean[r] = s / Float(c) }
    let rstd = Tensor(shape: [t]) { r in 1 / (mean[r] + eps).squareRoot() }
    for r in 0..<t { for j in 0..<c { xhat[r * c + j] = x.storage[r * c + j] * rstd.storage[r] } }
    let y = Tensor(shape: [t, c]) { i in xhat[i] * weight.storage[i % c] }
    return (y, rstd)
}

/// dx (T, C) and dweight (C) of RMSNorm from dy, x, weight and the saved rstd, pass by pass.
public func rmsNormBackwardNaive(dy: Tensor, x: Tensor, weight: Tensor, rstd: Tensor) -> (dx: Tensor, dweight: Tensor) {
    let (t, c) = (x.shape[0], x.shape[1])
    let xhat = Scratch(t * c), gw = Scratch(t * c), prod = Scratch(t * c), dot = Scratch(t)
    for r in 0..<t { for j in 0..<c { xhat[r * c + j] = x.storage[r * c + j] * rstd.storage[r] } }
    for i in 0..<(t * c) { gw[i] = dy.storage[i] * weight.storage[i % c] } // g = dy · w
    for i in 0..<(t * c) { prod[i] = gw[i] * xhat[i] }
    for r in 0..<t { var s: Float = 0; for j in 0..<c { s += prod[r * c + j] }; dot[r] = s / Float(c) }
    let dx = Tensor(shape: [t, c]) { i in rstd.storage[i / c] * (gw[i] - xhat[i] * dot[i / c]) }
    var dw = Tensor(shape: [c])
    for r in 0..<t { for j in 0..<c { dw[flat: j] += dy.storage[r * c + j] * xhat[r * c + j] } }
    return (dx, dw)
}

/// Fused RMSNorm forward: two sweeps over each row, no scratch. Returns y (T, C) and rstd (T).
public func rmsNormFused(_ x: Tensor, weight: Tensor, eps: Float) -> (y: Tensor, rstd: Tensor) {
    let (t, c) = (x.shape[0], x.shape[1])
    precondition(x.rank == 2 && weight.count == c, "rmsNorm: x \(x.shape), weight \(weight.shape)")
    var rstd = Tensor(shape: [t])
    let y = withPtr(x) { X in
        withPtr(weight) { W in
            makeTensor([t, c]) { Y in
                for r in 0..<t {
                    let xr = X + r * c, yr = Y + r * c
                    var s: Float = 0
                    for j in 0..<c { s += xr[j] * xr[j] }
                    let inv = 1 / (s / Float(c) + eps).squareRoot()
                    rstd[flat: r] = inv
                    for j in 0..<c { yr[j] = xr[j] * inv * W[j] }
                }
            }
        }
    }
    return (y, rstd)
}

/// Fused RMSNorm backward: per row one dot-product sweep, then one sweep writing dx and adding to dw.
public func rmsNormBackwardFused(dy: Tensor, x: Tensor, weight: Tensor, rstd: Tensor) -> (dx: Tensor, dweight: Tensor) {
    let (t, c) = (x.shape[0], x.shape[1])
    var dw = [Float](repeating: 0, count: c)
    let dx = withPtr(x) { X in
        withPtr(dy) { DY in
            withPtr(weight) { W in
                withPtr(rstd) { R in
                    dw.withUnsafeMutableBufferPointer { DWb in
                        let DW = DWb.baseAddress!
                        return makeTensor([t, c]) { DX in
                            for r in 0..<t {
                                let xr = X + r * c, gr = DY + r * c, dxr = DX + r * c, inv = R[r]
                                var dot: Float = 0
                                for j in 0..<c { dot += gr[j] * W[j] * xr[j] }
                                let m = dot * inv / Float(c) // mean(g · x̂)
                                for j in 0..<c {
                                    let xh = xr[j] * inv
                                    dxr[j] = inv * (gr[j] * W[j] - xh * m)
                                    DW[j] += gr[j] * xh
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return (dx, Tensor(shape: [c], storage: dw))
}
