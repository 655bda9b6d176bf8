// The small forward/backward pairs training is built from, each with the formula it implements. Matrix products go
// through sgemm; everything else is a plain loop. The pairs are checked as a whole against PyTorch autograd
// (Fixtures/train-tiny-random: every parameter's gradient), and the ones chapter 12 already has (RMSNorm, SwiGLU,
// RoPE, attention, linear + cross-entropy) are taken from FusedKernels rather than written twice.
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

/// LayerNorm over the last dim: y = x̂·w + b, x̂ = (x − μ)/√(σ² + ε), biased variance (as nn.LayerNorm).
func layerNormForward(_ x: Tensor, weight w: Tensor, bias b: Tensor, eps: Float) -> (Tensor, LayerNormTape) {
    let c = x.shape[x.rank - 1], t = x.count / c
    var xhat = [Float](repeating: 0, count: x.count), y = xhat, rstd = [Float](repeating: 0, count: t)
    x.storage.withUnsafeBufferPointer { X in
        for r in 0..<t {
            var mean: Float = 0
            for j in 0..<c { mean += X[r * c + j] }
            mean /= Float(c)
            var v: Float = 0
            for j in 0..<c { let d = X[r * c + j] - mean; v += d * d }
            let s = 1 / (v / Float(c) + eps).squareRoot()
            rstd[r] = s
            for j in 0..<c {
                let h = (X[r * c + j] - mean) * s
                xhat[r * c + j] = h
                y[r * c + j] = h * w.storage[j] + b.storage[j]
            }
        }
    }
    return (Tensor(shape: x.shape, storage: y), LayerNormTape(xhat: Tensor(shape: x.shape, storage: xhat), rstd: rstd))
}

/// LayerNorm backward: with g = dy·w, dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), dw = Σ_t dy·x̂, db = Σ_t dy.
func layerNormBackward(_ dy: Tensor, tape: LayerNormTape, weight w: Tensor) -> (dx: Tensor, dw: Tensor, db: Tensor) {
    let c = dy.shape[dy.rank - 1], t = dy.count / c
    var dx = [Float](repeating: 0, count: dy.count), dw = [Float](repeating: 0, count: c), db = dw
    dy.storage.withUnsafeBufferPointer { DY in
        tape.xhat.storage.withUnsafeBufferPointer { XH in
            for r in 0..<t {
                var mg: Float = 0, mgx: Float = 0
                for j in 0..<c {
                    let g = DY[r * c + j] * w.storage[j]
                    mg += g; mgx += g * XH[r * c + j]
                    dw[j] += DY[r * c + j] * XH[r * c + j]; db[j] += DY[r * c + j]
                }
                mg /= Float(c); mgx /= Float(c)
                for j in 0..<c {
                    let g = DY[r * c + j] * w.storage[j]
                    dx[r * c + j] = tape.rstd[r] * (g - mg - XH[r * c + j] * mgx)
                }
            }
        }
    }
    return (Tensor(shape: dy.shape, storage: dx), Tensor(shape: [c], storage: dw), Tensor(shape: [c], storage: db))
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

/// Writes head-major (heads, n, D) into rows `r` of token-major `x` (T, heads·D).
func scatterTokenMajor(_ src: Tensor, into x: inout Tensor, rows r: Range<Int>) {
    let heads = src.shape[0], n = src.shape[1], d = src.shape[2], w = heads * d
    x.withUnsafeMutableStorage { X in
        src.storage.withUnsafeBufferPointer { S in
            for h in 0..<heads {
                for i in 0..<n {
                    (X.baseAddress! + (r.lowerBound + i) * w + h * d).update(
                        from: S.baseAddress! + (h * n + i) * d, count: d)
                }
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
