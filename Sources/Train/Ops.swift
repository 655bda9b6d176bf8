// The small forward/backward pairs training is built from, each with the formula it implements. Matrix products go
// through sgemm; everything else is a plain loop (split over threads where it is large). The pairs are checked as a whole against PyTorch autograd
// (Fixtures/train-tiny-random: every parameter's gradient), and the ones chapter 12 already has (RMSNorm, SwiGLU,
// RoPE, attention, linear + cross-entropy) are taken from FusedKernels rather than written twice.
import Dispatch
import Foundation
import Tensor

// Threads: every product and loop of the step splits its own rows over `threads` (Dispatch workers), with OpenBLAS
// held to one thread. One kind of worker only: OpenBLAS's own threads spin (sched_yield) for a while after each
// product, and on two cores they took the CPU from the step's other threaded loops.

/// Parts for a product of m·n·k multiply-adds split by C's m rows: one below 4 M multiply-adds (waking the second
/// worker costs more than it saves on the small matrices of tiny models) or when there are too few rows to share.
func productParts(_ m: Int, _ n: Int, _ k: Int, threads: Int) -> Int {
    m * n * k < 1 << 22 ? 1 : max(1, min(threads, m / 16))
}

/// C = op(A)·op(B) for rank-2 A and B (row-major), op = identity or transpose; C's rows split over `threads`.
func mm(_ a: Tensor, _ b: Tensor, transA: Bool = false, transB: Bool = false, threads: Int) -> Tensor {
    let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
    let n = transB ? b.shape[0] : b.shape[1]
    precondition(
        k == (transB ? b.shape[1] : b.shape[0]), "mm: \(a.shape)\(transA ? "ᵀ" : "") · \(b.shape)\(transB ? "ᵀ" : "")")
    let parts = productParts(m, n, k, threads: threads)
    return Tensor(shape: [m, n]) { c in
        guard m > 0 && n > 0 else { return }
        if k == 0 { c.initialize(repeating: 0); return }
        BLAS.use(threads: 1)
        let cp = c.baseAddress!, lda = a.shape[1], ldb = b.shape[1]
        withPointers(a, b, b) { A, B, _ in
            inParallel(m, parts: parts) { _, rows in
                // C's rows lo..<hi: A's rows (or, transposed, its columns) lo..<hi
                let ap = transA ? A + rows.lowerBound : A + rows.lowerBound * lda
                BLAS.sgemm(
                    transA: transA, transB: transB, m: rows.count, n: n, k: k, a: ap, lda: lda, b: B, ldb: ldb,
                    beta: 0, c: cp + rows.lowerBound * n, ldc: n)
            }
        }
    }
}

/// y = x·Wᵀ + b for x (T, in), W (out, in); the rows of x split over `threads`, the bias written first and added by
/// sgemm (β = 1).
func linearForward(_ x: Tensor, _ w: Tensor, _ b: Tensor?, threads: Int) -> Tensor {
    let cout = w.shape[0], cin = w.shape[1], t = x.count / max(cin, 1)
    var shape = x.shape
    shape[shape.count - 1] = cout
    let parts = productParts(t, cout, cin, threads: threads)
    return Tensor(shape: shape) { y in
        guard t > 0 && cout > 0 else { return }
        BLAS.use(threads: 1)
        let yp = y.baseAddress!
        withPointers(x, w, b ?? w) { X, W, Bv in
            inParallel(t, parts: parts) { _, rows in
                let out = yp + rows.lowerBound * cout
                if b != nil {
                    for r in 0..<rows.count { (out + r * cout).initialize(from: Bv, count: cout) }
                }
                BLAS.sgemm(
                    transB: true, m: rows.count, n: cout, k: cin, a: X + rows.lowerBound * cin, lda: cin, b: W,
                    ldb: cin, beta: b == nil ? 0 : 1, c: out, ldc: cout)
            }
        }
    }
}

/// Backward of y = x·Wᵀ + b: dx = dy·W, dW = dyᵀ·x, db = Σ_t dy. `weights: false` skips dW and db (a frozen layer
/// still passes its input gradient on); `input: false` skips dx (the first layer of a frozen-below stack).
func linearBackward(
    _ dy: Tensor, x: Tensor, w: Tensor, bias: Bool, weights: Bool = true, input: Bool = true, threads: Int
) -> (dx: Tensor?, dw: Tensor?, db: Tensor?) {
    let dx = input ? mm(dy, w, threads: threads) : nil
    guard weights else { return (dx, nil, nil) }
    let dw = mm(dy, x, transA: true, threads: threads)
    let db = bias ? columnSums(dy, threads: threads) : nil
    return (dx, dw, db)
}

/// Σ over rows of a (T, C) tensor → (C); rows split over `threads`, each part's sums added in part order.
func columnSums(_ x: Tensor, threads: Int) -> Tensor {
    let c = x.shape[x.rank - 1], t = x.count / max(c, 1)
    let parts = partCount(t, grain: 1024, threads: threads)
    var partial = [Float](repeating: 0, count: parts * c)
    x.storage.withUnsafeBufferPointer { X in
        partial.withUnsafeMutableBufferPointer { P in
            let xp = X.baseAddress!, pp = P.baseAddress!
            inParallel(t, parts: parts) { p, rows in
                let acc = pp + p * c
                for r in rows {
                    let row = xp + r * c
                    for j in 0..<c { acc[j] += row[j] }
                }
            }
        }
    }
    var out = [Float](repeating: 0, count: c)
    for p in 0..<parts { for j in 0..<c { out[j] += partial[p * c + j] } }
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
    var xhat = Tensor(shape: [0]), rstd = [Float](repeating: 0, count: t)
    // y and x̂ are written in full row by row: neither is zeroed first
    let y = Tensor(
        shape: x.shape,
        overwrittenBy: { Yb in
            xhat = Tensor(
                shape: x.shape,
                overwrittenBy: { XHb in
                    guard t > 0 else { return }
                    withPointers(x, w, b) { X, W, B in
                        rstd.withUnsafeMutableBufferPointer { Rb in
                            let XH = XHb.baseAddress!, Y = Yb.baseAddress!, R = Rb.baseAddress!
                            inParallel(t, parts: partCount(t, grain: 256, threads: threads)) { _, rows in
                                for r in rows {
                                    let xr = X + r * c, hr = XH + r * c, yr = Y + r * c
                                    let mean = rowSum(c) { xr[$0] } / Float(c)
                                    let v = rowSum(c) {
                                        let d = xr[$0] - mean; return d * d
                                    }
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
                })
        })
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
                            for j in 0..<c { dw[j] += g0[j] * h[j]; db[j] += g0[j] }
                            let mg = rowSum(c) { g0[$0] * W[$0] } / Float(c)
                            let mgx = rowSum(c) { g0[$0] * W[$0] * h[$0] } / Float(c)
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

/// Σ_{j < n} term(j) with eight running sums (one chain would wait on each add; the order differs from a plain
/// loop's by rounding only).
@inline(__always)
func rowSum(_ n: Int, _ term: (Int) -> Float) -> Float {
    var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0, s4: Float = 0, s5: Float = 0, s6: Float = 0
    var s7: Float = 0
    var j = 0
    while j + 8 <= n {
        s0 += term(j); s1 += term(j + 1); s2 += term(j + 2); s3 += term(j + 3)
        s4 += term(j + 4); s5 += term(j + 5); s6 += term(j + 6); s7 += term(j + 7)
        j += 8
    }
    var s = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    while j < n { s += term(j); j += 1 }
    return s
}

/// d/dx of gelu(x) = x·Φ(x): Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π).
func geluErfGrad(_ x: Float) -> Float {
    let phi: Float = 0.5 * (1 + erf(x / Float(2).squareRoot()))
    let pdf: Float = exp(-0.5 * x * x) / (2 * Float.pi).squareRoot()
    return phi + x * pdf
}

/// A function of one float applied to every element (`mapElements`) or whose value scales a gradient
/// (`scaleElements`); a type rather than a closure so that each use is specialised and its loop vectorised.
protocol ElementFunction {
    static func apply(_ x: Float) -> Float
}

/// F(x) of every element of x, split over `threads`.
func mapElements<F: ElementFunction>(_ x: Tensor, _: F.Type, grain: Int, threads: Int) -> Tensor {
    Tensor(
        shape: x.shape,
        overwrittenBy: { Yb in
            guard let y = Yb.baseAddress else { return }
            x.storage.withUnsafeBufferPointer { Xb in
                let xp = Xb.baseAddress!
                inParallel(Yb.count, parts: partCount(Yb.count, grain: grain, threads: threads)) { _, r in
                    for i in r { y[i] = F.apply(xp[i]) }
                }
            }
        })
}

/// g[i] ← g[i] · F(x[i]) for every element, split over `threads`: an activation's backward.
func scaleElements<F: ElementFunction>(_ g: inout Tensor, by x: Tensor, _: F.Type, grain: Int, threads: Int) {
    precondition(g.count == x.count, "scaleElements: \(g.shape) vs \(x.shape)")
    x.storage.withUnsafeBufferPointer { Xb in
        g.withUnsafeMutableStorage { Gb in
            guard let xp = Xb.baseAddress, let gp = Gb.baseAddress else { return }
            inParallel(Gb.count, parts: partCount(Gb.count, grain: grain, threads: threads)) { _, r in
                for i in r { gp[i] *= F.apply(xp[i]) }
            }
        }
    }
}

/// gelu(x) = x·Φ(x) (`geluErf`, mlp1's activation).
enum GeluErf: ElementFunction {
    static func apply(_ x: Float) -> Float { geluErf(x) }
}

/// gelu'(x) (`geluErfGrad`).
enum GeluErfGrad: ElementFunction {
    static func apply(_ x: Float) -> Float { geluErfGrad(x) }
}

/// gelu_tanh(x) = x·σ(2u) = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³), with the vectorised `fastExp` (about 1e-7
/// relative to libm's tanh): the vision MLP's activation.
enum GeluTanh: ElementFunction {
    @inline(__always)
    static func apply(_ x: Float) -> Float {
        let u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
        return x / (1 + fastExp(-2 * u))
    }
}

/// gelu_tanh'(x) = ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²), written with s = σ(2u) = ½(1 + tanh u)
/// and 1 − tanh²u = 4s(1 − s) as s + 2x·s(1 − s)·√(2/π)(1 + 3·0.044715x²), so that it vectorises.
enum GeluTanhGrad: ElementFunction {
    @inline(__always)
    static func apply(_ v: Float) -> Float {
        let k: Float = 0.7978845608028654, a: Float = 0.044715
        let v2 = v * v, s = 1 / (1 + fastExp(-2 * k * (v + a * v2 * v)))
        return s + 2 * v * s * (1 - s) * k * (1 + 3 * a * v2)
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

/// Writes head-major (heads, n, D) into rows `r` of a token-major buffer at `x` whose rows are `stride` floats apart:
/// head h of row i to x[i · stride + h·D ..< + D].
func scatterTokenMajor(_ src: Tensor, into x: UnsafeMutablePointer<Float>, width stride: Int, rows r: Range<Int>) {
    let heads = src.shape[0], n = src.shape[1], d = src.shape[2]
    precondition(heads * d <= stride, "scatterTokenMajor: \(src.shape) into rows of \(stride)")
    src.storage.withUnsafeBufferPointer { S in
        for h in 0..<heads {
            for i in 0..<n {
                (x + (r.lowerBound + i) * stride + h * d).update(from: S.baseAddress! + (h * n + i) * d, count: d)
            }
        }
    }
}

/// Columns c ..< c + width of every row of a (T, W) tensor, as a (T, width) tensor.
func columnBlock(_ x: Tensor, from c: Int, width: Int) -> Tensor {
    let W = x.shape[1], t = x.shape[0]
    return Tensor(shape: [t, width]) { out in
        x.storage.withUnsafeBufferPointer { X in
            for r in 0..<t { (out.baseAddress! + r * width).initialize(from: X.baseAddress! + r * W + c, count: width) }
        }
    }
}

/// Rows lo ..< hi of a (R, C) tensor.
func rowBlock(_ x: Tensor, _ rows: Range<Int>) -> Tensor {
    let c = x.count / max(x.shape[0], 1)
    return Tensor(
        shape: [rows.count] + x.shape.dropFirst(),
        storage: Array(x.storage[(rows.lowerBound * c)..<(rows.upperBound * c)]))
}

extension Tensor {
    /// self += other, elementwise (same count), split over `threads`.
    mutating func add(_ other: Tensor, threads: Int = 1) {
        precondition(count == other.count, "add: \(shape) vs \(other.shape)")
        withUnsafeMutableStorage { Ab in
            other.storage.withUnsafeBufferPointer { Bb in
                guard let a = Ab.baseAddress, let b = Bb.baseAddress else { return }
                inParallel(Ab.count, parts: partCount(Ab.count, grain: 1 << 16, threads: threads)) { _, r in
                    for i in r { a[i] += b[i] }
                }
            }
        }
    }

    /// Adds `table` (R, C) to every block of R rows of this (N·R, C) tensor: the tower's position table added to
    /// every tile.
    mutating func addToEveryBlock(_ table: Tensor) {
        let n = table.count
        precondition(n > 0 && count % n == 0, "addToEveryBlock: \(shape) vs \(table.shape)")
        withUnsafeMutableStorage { Ab in
            table.storage.withUnsafeBufferPointer { Tb in
                let a = Ab.baseAddress!, t = Tb.baseAddress!
                for block in 0..<(Ab.count / n) {
                    let row = a + block * n
                    for j in 0..<n { row[j] += t[j] }
                }
            }
        }
    }

    /// The sum of this (N·R, C) tensor's N blocks of R rows, as (R, C) shaped like `block`: the gradient of a table
    /// added to every block.
    func sumOfBlocks(shaped block: [Int]) -> Tensor {
        let n = Tensor.elementCount(block)
        precondition(n > 0 && count % n == 0, "sumOfBlocks: \(shape) vs \(block)")
        var out = Tensor(shape: block)
        out.withUnsafeMutableStorage { Ob in
            storage.withUnsafeBufferPointer { Sb in
                let o = Ob.baseAddress!, s = Sb.baseAddress!
                for blockIndex in 0..<(Sb.count / n) {
                    let row = s + blockIndex * n
                    for j in 0..<n { o[j] += row[j] }
                }
            }
        }
        return out
    }
}
