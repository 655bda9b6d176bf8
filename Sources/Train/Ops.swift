// The small forward/backward pairs training is built from, each with the formula it implements. Matrix products go
// through sgemm; everything else is a plain loop. The pairs are checked as a whole against PyTorch autograd
// (Fixtures/train-tiny-random: every parameter's gradient), and the ones chapter 12 already has (RMSNorm, SwiGLU,
// RoPE, attention, linear + cross-entropy) are taken from FusedKernels rather than written twice.
import Dispatch
import Foundation
import Tensor

/// OpenBLAS threads for a product of m·n·k multiply-adds: one below 4 M (waking the second thread costs more than
/// it saves on the small matrices of tiny models), else the process's default.
func productThreads(_ m: Int, _ n: Int, _ k: Int) -> Int { m * n * k < 1 << 22 ? 1 : BLAS.defaultThreads }

/// C = op(A)·op(B) for rank-2 A and B (row-major), op = identity or transpose.
func mm(_ a: Tensor, _ b: Tensor, transA: Bool = false, transB: Bool = false) -> Tensor {
    let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
    let n = transB ? b.shape[0] : b.shape[1]
    precondition(
        k == (transB ? b.shape[1] : b.shape[0]), "mm: \(a.shape)\(transA ? "ᵀ" : "") · \(b.shape)\(transB ? "ᵀ" : "")")
    return Tensor(shape: [m, n]) { c in
        guard m > 0 && n > 0 else { return }
        if k == 0 { c.initialize(repeating: 0); return }
        BLAS.use(threads: productThreads(m, n, k))
        a.storage.withUnsafeBufferPointer { A in
            b.storage.withUnsafeBufferPointer { B in
                BLAS.sgemm(
                    transA: transA, transB: transB, m: m, n: n, k: k, a: A.baseAddress!, lda: a.shape[1],
                    b: B.baseAddress!, ldb: b.shape[1], beta: 0, c: c.baseAddress!, ldc: n)
            }
        }
    }
}

/// y = x·Wᵀ + b for x (T, in), W (out, in).
func linearForward(_ x: Tensor, _ w: Tensor, _ b: Tensor?) -> Tensor {
    let t = productThreads(x.count / w.shape[1], w.shape[0], w.shape[1])
    return linear(x, weight: w, bias: b, compute: .fast(threads: t))
}

/// Backward of y = x·Wᵀ + b: dx = dy·W, dW = dyᵀ·x, db = Σ_t dy. `weights: false` skips dW and db (a frozen layer
/// still passes its input gradient on); `input: false` skips dx (the first layer of a frozen-below stack).
func linearBackward(
    _ dy: Tensor, x: Tensor, w: Tensor, bias: Bool, weights: Bool = true, input: Bool = true
) -> (dx: Tensor?, dw: Tensor?, db: Tensor?) {
    let dx = input ? mm(dy, w) : nil
    guard weights else { return (dx, nil, nil) }
    let dw = mm(dy, x, transA: true)
    let db = bias ? columnSums(dy) : nil
    return (dx, dw, db)
}

/// Σ over rows of a (T, C) tensor → (C).
func columnSums(_ x: Tensor) -> Tensor {
    let c = x.shape[x.rank - 1], t = x.count / max(c, 1)
    var out = [Float](repeating: 0, count: c)
    x.storage.withUnsafeBufferPointer { X in
        for r in 0..<t { for j in 0..<c { out[j] += X[r * c + j] } }
    }
    return Tensor(shape: [c], storage: out)
}

/// What LayerNorm keeps for its backward: x̂ = (x − μ)·rstd (T, C) and rstd (T).
struct LayerNormTape {
    var xhat: Tensor
    var rstd: [Float]
}

/// LayerNorm over the last dim: y = x̂·w + b, x̂ = (x − μ)/√(σ² + ε), biased variance (as nn.LayerNorm). Rows are
/// split over `threads`.
func layerNormForward(
    _ x: Tensor, weight w: Tensor, bias b: Tensor, eps: Float, threads: Int
) -> (Tensor, LayerNormTape) {
    let c = x.shape[x.rank - 1], t = x.count / c
    var xhat = Tensor(shape: x.shape), y = Tensor(shape: x.shape), rstd = [Float](repeating: 0, count: t)
    withPointers(x, w, b) { X, W, B in
        xhat.withUnsafeMutableStorage { XHb in
            y.withUnsafeMutableStorage { Yb in
                rstd.withUnsafeMutableBufferPointer { Rb in
                    let XH = XHb.baseAddress!, Y = Yb.baseAddress!, R = Rb.baseAddress!
                    inParallel(t, parts: partCount(t, grain: 256, threads: threads)) { _, rows in
                        for r in rows {
                            let xr = X + r * c, hr = XH + r * c, yr = Y + r * c
                            var mean: Float = 0
                            for j in 0..<c { mean += xr[j] }
                            mean /= Float(c)
                            var v: Float = 0
                            for j in 0..<c { let d = xr[j] - mean; v += d * d }
                            let s = 1 / (v / Float(c) + eps).squareRoot()
                            R[r] = s
                            for j in 0..<c {
                                let h = (xr[j] - mean) * s
                                hr[j] = h
                                yr[j] = h * W[j] + B[j]
                            }
                        }
                    }
                }
            }
        }
    }
    return (y, LayerNormTape(xhat: xhat, rstd: rstd))
}

/// LayerNorm backward: with g = dy·w, dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), dw = Σ_t dy·x̂, db = Σ_t dy. Rows are
/// split over `threads`, each summing its own dw and db, added up in part order.
func layerNormBackward(
    _ dy: Tensor, tape: LayerNormTape, weight w: Tensor, threads: Int
) -> (dx: Tensor, dw: Tensor, db: Tensor) {
    let c = dy.shape[dy.rank - 1], t = dy.count / c
    let parts = partCount(t, grain: 256, threads: threads)
    var dx = Tensor(shape: dy.shape), partial = [Float](repeating: 0, count: parts * 2 * c)
    withPointers(dy, tape.xhat, w) { DY, XH, W in
        dx.withUnsafeMutableStorage { DXb in
            partial.withUnsafeMutableBufferPointer { Pb in
                let DX = DXb.baseAddress!, P = Pb.baseAddress!
                tape.rstd.withUnsafeBufferPointer { R in
                    inParallel(t, parts: parts) { p, rows in
                        let dw = P + p * 2 * c, db = dw + c
                        for r in rows {
                            let g0 = DY + r * c, h = XH + r * c, o = DX + r * c
                            var mg: Float = 0, mgx: Float = 0
                            for j in 0..<c {
                                let g = g0[j] * W[j]
                                mg += g; mgx += g * h[j]
                                dw[j] += g0[j] * h[j]; db[j] += g0[j]
                            }
                            mg /= Float(c); mgx /= Float(c)
                            let s = R[r]
                            for j in 0..<c { o[j] = s * (g0[j] * W[j] - mg - h[j] * mgx) }
                        }
                    }
                }
            }
        }
    }
    var dw = [Float](repeating: 0, count: c), db = dw
    for p in 0..<parts {
        for j in 0..<c { dw[j] += partial[p * 2 * c + j]; db[j] += partial[p * 2 * c + c + j] }
    }
    return (dx, Tensor(shape: [c], storage: dw), Tensor(shape: [c], storage: db))
}

/// d/dx of gelu_tanh(x) = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³):
/// ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²).
func geluTanhGrad(_ x: Float) -> Float {
    let k: Float = 0.7978845608028654, a: Float = 0.044715
    let x2: Float = x * x
    let th: Float = tanh(k * (x + a * x2 * x))
    let left: Float = 0.5 * (1 + th)
    let right: Float = 0.5 * x * (1 - th * th) * k * (1 + 3 * a * x2)
    return left + right
}

/// d/dx of gelu(x) = x·Φ(x): Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π).
func geluErfGrad(_ x: Float) -> Float {
    let phi: Float = 0.5 * (1 + erf(x / Float(2).squareRoot()))
    let pdf: Float = exp(-0.5 * x * x) / (2 * Float.pi).squareRoot()
    return phi + x * pdf
}

/// gelu_tanh of every element, as x·σ(2u) = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³), with the vectorised
/// `fastExp` (about 1e-7 relative to libm's tanh), split over `threads`: the vision MLP's activation.
func geluTanhForward(_ f: Tensor, threads: Int) -> Tensor {
    var out = f
    out.withUnsafeMutableStorage { Yb in
        let y = Yb.baseAddress!
        inParallel(Yb.count, parts: partCount(Yb.count, grain: 1 << 14, threads: threads)) { _, r in
            for i in r {
                let x = y[i], u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
                y[i] = x / (1 + fastExp(-2 * u))
            }
        }
    }
    return out
}

/// g ← g · gelu_tanh'(x) elementwise, with s = σ(2u) = ½(1 + tanh u) and 1 − tanh²u = 4s(1 − s):
/// gelu_tanh'(x) = s + 2x·s(1 − s)·√(2/π)(1 + 3·0.044715x²) (`geluTanhGrad`'s formula, vectorised).
func geluTanhBackward(_ g: inout Tensor, x: Tensor, threads: Int) {
    let k: Float = 0.7978845608028654, a: Float = 0.044715
    x.storage.withUnsafeBufferPointer { Xb in
        g.withUnsafeMutableStorage { Gb in
            let X = Xb.baseAddress!, G = Gb.baseAddress!
            inParallel(Gb.count, parts: partCount(Gb.count, grain: 1 << 14, threads: threads)) { _, r in
                for i in r {
                    let v = X[i], v2 = v * v
                    let s = 1 / (1 + fastExp(-2 * k * (v + a * v2 * v)))
                    G[i] *= s + 2 * v * s * (1 - s) * k * (1 + 3 * a * v2)
                }
            }
        }
    }
}

/// How many of `threads` share `n` items of at least `grain` each.
func partCount(_ n: Int, grain: Int, threads: Int) -> Int { max(1, min(threads, n / max(grain, 1))) }

/// Runs `body(p, range)` on `parts` contiguous ranges of 0..<n concurrently (one part: on this thread). `body`
/// must write only what its own range owns, or its own partial sums (index p).
func inParallel(_ n: Int, parts: Int, _ body: (Int, Range<Int>) -> Void) {
    if parts <= 1 { body(0, 0..<n); return }
    // nonisolated(unsafe): each part writes only its own range (or its own partial sums) — the callers' contract.
    nonisolated(unsafe) let disjoint = body
    DispatchQueue.concurrentPerform(iterations: parts) { p in disjoint(p, (n * p / parts)..<(n * (p + 1) / parts)) }
}

/// The base addresses of three tensors' storage.
func withPointers<R>(
    _ a: Tensor, _ b: Tensor, _ c: Tensor,
    _ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>) -> R
) -> R {
    a.storage.withUnsafeBufferPointer { A in
        b.storage.withUnsafeBufferPointer { B in
            c.storage.withUnsafeBufferPointer { C in body(A.baseAddress!, B.baseAddress!, C.baseAddress!) }
        }
    }
}

/// Rows `r` of a token-major (T, heads·D) tensor as head-major (heads, r.count, D).
func headMajor(_ x: Tensor, rows r: Range<Int>, heads: Int, headDim d: Int) -> Tensor {
    let w = heads * d, n = r.count
    return Tensor(shape: [heads, n, d]) { out in
        x.storage.withUnsafeBufferPointer { X in
            for h in 0..<heads {
                for i in 0..<n {
                    (out.baseAddress! + (h * n + i) * d).initialize(
                        from: X.baseAddress! + (r.lowerBound + i) * w + h * d, count: d)
                }
            }
        }
    }
}

/// Writes head-major (heads, n, D) into rows `r` of token-major x (T, width = heads·D) at `x`.
func scatterTokenMajor(_ src: Tensor, into x: UnsafeMutablePointer<Float>, width w: Int, rows r: Range<Int>) {
    let heads = src.shape[0], n = src.shape[1], d = src.shape[2]
    precondition(heads * d == w, "scatterTokenMajor: \(src.shape) into rows of \(w)")
    src.storage.withUnsafeBufferPointer { S in
        for h in 0..<heads {
            for i in 0..<n {
                (x + (r.lowerBound + i) * w + h * d).update(from: S.baseAddress! + (h * n + i) * d, count: d)
            }
        }
    }
}

extension Tensor {
    /// self += other, elementwise (same count).
    mutating func add(_ other: Tensor) {
        precondition(count == other.count, "add: \(shape) vs \(other.shape)")
        withUnsafeMutableStorage { A in
            other.storage.withUnsafeBufferPointer { B in for i in 0..<A.count { A[i] += B[i] } }
        }
    }
}
