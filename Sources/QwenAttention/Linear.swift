// A linear layer whose weight stays where the checkpoint put it: (C_out, C_in), contiguous, read in
// place on every call — never copied or transposed per token.
//
// What it is: y = x·Wᵀ + b for x (T, C_in). Several tokens (prefill) go through `cblas_sgemm`. One token
// (decode) is a matrix-vector product that reads every weight exactly once, so its speed is the memory
// bandwidth: `gemvRows` splits the rows over the threads and streams two rows at a time from two places in the
// range, prefetching ahead in each (`cblas_sgemv` is the alternative, `Compute.Gemv.blas`; the benchmark
// compares them).
// `Compute.reference` is Tensor's triple-loop `linear`. `callAsFunction(_:addingTo:)` adds the product to a
// residual through sgemm's β = 1. A BF16 weight (`Linear.Weight.bf16`, read in place from the mapped checkpoint)
// goes through `gemvRowsBF16` for one token and through sgemm on widened panels (`panelBytes`) for more.
// What it is not: fused; LoRA.
import _CBLAS
import _CKernels
import Dispatch
import Tensor

/// y[r] = β·y[r] + Σ_c W[r, c]·x[c] for r in 0..<rows; W row-major (rows, cols), read once, in place.
/// Rows are split by `forEachRowRange` into ranges run concurrently, each through `eaglet_gemv_f32` (rows r and
/// h + r together, each stream prefetched 2 KiB ahead, AVX-512 or AVX2 chosen at run time; its plain C loop is the
/// reference twin).
public func gemvRows(
    _ w: UnsafePointer<Float>, rows: Int, cols: Int, x: UnsafePointer<Float>,
    y: UnsafeMutablePointer<Float>, accumulate: Bool, threads: Int
) {
    forEachRowRange(rows: rows, threads: threads) { lo, hi in
        eaglet_gemv_f32(w + lo * cols, hi - lo, cols, x, y + lo, accumulate ? 1 : 0)
    }
}

/// Splits rows 0 ..< `rows` into up to 4 × `threads` contiguous ranges of at least 64 rows, cut on multiples of
/// 4, and runs `body(lo, hi)` on each concurrently (on this thread when there is one range or one thread); the
/// threads take ranges as they come free, so one slowed by the host does less (one range a thread lost 4–10 % of
/// the Eagle2.5-8B-shaped decode, six interleaved pairs). The one partition decode's products use; `body` must
/// write only its own rows.
func forEachRowRange(rows: Int, threads: Int, _ body: (Int, Int) -> Void) {
    let parts = threads <= 1 ? 1 : max(1, min(4 * threads, rows / 64))
    if parts == 1 { body(0, rows); return }
    // nonisolated(unsafe): each iteration writes only its own rows (the callers' contract) and only reads the rest.
    nonisolated(unsafe) let disjointRange = body
    DispatchQueue.concurrentPerform(iterations: parts) { p in
        let lo = (rows / 4) * p / parts * 4, hi = p == parts - 1 ? rows : (rows / 4) * (p + 1) / parts * 4
        disjointRange(lo, hi)
    }
}

/// Decode's products that read the same vector — q, k, v of a layer, or gate and up — in one pass over
/// the threads: y_i = W_i·x + b_i for every `Linear` in `layers`, with all their rows, concatenated,
/// split by `forEachRowRange`. One dispatch instead of one per matrix, and the small k/v
/// matrices no longer get a thread wake-up each. x is one token (C_in); returns one (1, C_out_i) each.
public func gemvGroup(_ layers: [Linear], _ x: Tensor, threads: Int) -> [Tensor] {
    let cin = layers[0].inFeatures
    precondition(
        x.count == cin && layers.allSatisfy { $0.inFeatures == cin },
        "gemvGroup: one token of width \(cin) for every layer")
    let total = layers.reduce(0) { $0 + $1.outFeatures }
    var out = [Float](repeating: 0, count: total)
    var starts = [Int](), s = 0
    for l in layers { starts.append(s); s += l.outFeatures }
    for (i, l) in layers.enumerated() {
        if let b = l.bias { out.replaceSubrange(starts[i]..<(starts[i] + l.outFeatures), with: b.storage) }
    }
    let accumulate = layers.map { $0.bias != nil }
    // A q8_0 matrix in the group: x is quantized once, for all of them.
    let xq =
        layers.contains { if case .q8_0 = $0.stored { true } else { false } }
        ? x.storage.withUnsafeBufferPointer { Q8Activation($0.baseAddress!, count: cin) } : nil
    withWeightPointers(layers[...], []) { weights in
        x.storage.withUnsafeBufferPointer { X in
            out.withUnsafeMutableBufferPointer { Y in
                let xp = X.baseAddress!, yp = Y.baseAddress!
                func range(_ lo: Int, _ hi: Int) {
                    for (i, w) in weights.enumerated() {
                        let a = max(lo, starts[i]), b = min(hi, starts[i] + layers[i].outFeatures)
                        guard a < b else { continue }
                        switch w {
                        case .f32(let w):
                            gemvRows(
                                w + (a - starts[i]) * cin, rows: b - a, cols: cin, x: xp, y: yp + a,
                                accumulate: accumulate[i], threads: 1)
                        case .bf16(let w):
                            eaglet_gemv_bf16(w + (a - starts[i]) * cin, b - a, cin, xp, yp + a, accumulate[i] ? 1 : 0)
                        case .q8_0(let w):
                            xq!.withPointers { q, d in
                                eaglet_gemv_q8_0(w, cin, a - starts[i], b - a, q, d, yp + a, accumulate[i] ? 1 : 0)
                            }
                        }
                    }
                }
                forEachRowRange(rows: total, threads: threads, range)
            }
        }
    }
    return layers.indices.map { i in
        Tensor(shape: [1, layers[i].outFeatures], storage: Array(out[starts[i]..<(starts[i] + layers[i].outFeatures)]))
    }
}

/// Where a weight's rows are: fp32, BF16 read in place, or q8_0 blocks.
enum WeightRows {
    case f32(UnsafePointer<Float>)
    case bf16(UnsafePointer<UInt16>)
    case q8_0(UnsafePointer<UInt8>)
}

/// Calls `body` with the rows of every layer's weight, each valid for the whole call.
func withWeightPointers(_ ls: ArraySlice<Linear>, _ got: [WeightRows], _ body: ([WeightRows]) -> Void) {
    guard let first = ls.first else { return body(got) }
    switch first.stored {
    case .bf16(let m): withWeightPointers(ls.dropFirst(), got + [.bf16(m.bits)], body)
    case .q8_0(let m): withWeightPointers(ls.dropFirst(), got + [.q8_0(m.bytes)], body)
    case .f32(let t):
        t.storage.withUnsafeBufferPointer { withWeightPointers(ls.dropFirst(), got + [.f32($0.baseAddress!)], body) }
    }
}

/// gemvRows for a BF16 matrix: rows split over `threads`, each range widened in registers by `eaglet_gemv_bf16`.
public func gemvRowsBF16(
    _ w: BF16Matrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, accumulate: Bool, threads: Int
) {
    let cols = w.cols
    forEachRowRange(rows: w.rows, threads: threads) { lo, hi in
        eaglet_gemv_bf16(w.bits + lo * cols, hi - lo, cols, x, y + lo, accumulate ? 1 : 0)
    }
}

/// gemvRows for a q8_0 matrix: x quantized once (`Q8Activation`), rows split over `threads`.
public func gemvRowsQ8(
    _ w: Q8Matrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, accumulate: Bool, threads: Int
) {
    let cols = w.cols, xq = Q8Activation(x, count: cols)
    xq.withPointers { q, d in
        forEachRowRange(rows: w.rows, threads: threads) { lo, hi in
            eaglet_gemv_q8_0(w.bytes, cols, lo, hi - lo, q, d, y + lo, accumulate ? 1 : 0)
        }
    }
}

/// The reference twin of `eaglet_gemv_bf16`: the textbook loop, each weight widened exactly, summed in order.
public func gemvBF16Reference(_ w: BF16Matrix, _ x: [Float]) -> [Float] {
    (0..<w.rows).map { r in
        var s: Float = 0
        for c in 0..<w.cols { s += bf16ToFloat(w.bits[r * w.cols + c]) * x[c] }
        return s
    }
}

/// `nn.Linear` with checkpoint layout: weight (C_out, C_in), optional bias (C_out). The weight is fp32, or BF16
/// read in place from the mapped checkpoint (`WeightFormat.native`).
public struct Linear: Sendable {
    /// A (rows, cols) matrix as stored: fp32, or BF16 read in place.
    public enum Weight: Sendable {
        case f32(Tensor)
        case bf16(BF16Matrix)
        /// Quantized at load (`WeightFormat.q8_0`).
        case q8_0(Q8Matrix)

        public var shape: [Int] {
            switch self {
            case .f32(let t): return t.shape
            case .bf16(let m): return m.shape
            case .q8_0(let m): return m.shape
            }
        }

        /// As an fp32 tensor (a widened copy when it is stored as BF16 or q8_0).
        public var widened: Tensor {
            switch self {
            case .f32(let t): return t
            case .bf16(let m): return m.widened()
            case .q8_0(let m): return m.widened()
            }
        }

        /// Row `r`, as fp32, into `out` (cols floats): an embedding lookup.
        public func copyRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
            switch self {
            case .bf16(let m): m.widenRows(r..<(r + 1), into: out)
            case .q8_0(let m): m.widenRows(r..<(r + 1), into: out)
            case .f32(let t):
                let c = t.shape[1]
                t.storage.withUnsafeBufferPointer { out.initialize(from: $0.baseAddress! + r * c, count: c) }
            }
        }
    }

    public let stored: Weight
    public let bias: Tensor?
    /// The weight as an fp32 tensor (a widened copy when it is stored as BF16).
    public var weight: Tensor { stored.widened }
    public var inFeatures: Int { stored.shape[1] }
    public var outFeatures: Int { stored.shape[0] }

    public init(weight: Tensor, bias: Tensor? = nil) {
        precondition(weight.rank == 2, "Linear: weight must be (C_out, C_in), got \(weight.shape)")
        self.init(stored: .f32(weight), bias: bias)
    }

    public init(stored: Weight, bias: Tensor? = nil) {
        precondition(bias == nil || bias!.count == stored.shape[0], "Linear: bias does not match \(stored.shape)")
        self.stored = stored
        self.bias = bias
    }

    public init(bf16 weight: BF16Matrix, bias: Tensor? = nil) { self.init(stored: .bf16(weight), bias: bias) }

    /// x (…, C_in) → x·Wᵀ + b (…, C_out).
    public func callAsFunction(_ x: Tensor, compute: Compute = .fast) -> Tensor {
        if compute.isReference { return linear(x, weight: weight, bias: bias, compute: .reference) }
        precondition(x.shape.last == inFeatures, "Linear: input \(x.shape) does not have width \(inFeatures)")
        var shape = x.shape
        shape[shape.count - 1] = outFeatures
        return Tensor(shape: shape, overwrittenBy: { Y in product(x, into: Y, accumulate: false, compute: compute) })
    }

    /// y (T, C_out) += x (T, C_in)·Wᵀ + b: the residual add rides on sgemm's β = 1 (fast path) instead of a
    /// second pass over y. The reference path adds the reference product.
    public func callAsFunction(_ x: Tensor, addingTo y: inout Tensor, compute: Compute = .fast) {
        precondition(
            y.count == (x.count / max(inFeatures, 1)) * outFeatures,
            "Linear: \(x.shape) · (\(outFeatures), \(inFeatures))ᵀ does not fit \(y.shape)")
        if compute.isReference {
            let p = linear(x, weight: weight, bias: bias, compute: .reference)
            y.withUnsafeMutableStorage { Y in
                p.storage.withUnsafeBufferPointer { P in for i in 0..<Y.count { Y[i] += P[i] } }
            }
            return
        }
        y.withUnsafeMutableStorage { Y in product(x, into: Y, accumulate: true, compute: compute) }
    }

    /// The fast product into `Y` (rows × C_out): one token through `gemvRows` (or `cblas_sgemv`), more through
    /// sgemm. Without `accumulate` every element of Y is written (Y may start uninitialised).
    private func product(_ x: Tensor, into Y: UnsafeMutableBufferPointer<Float>, accumulate: Bool, compute: Compute) {
        let cin = inFeatures, cout = outFeatures
        precondition(x.shape.last == cin, "Linear: input \(x.shape) does not have width \(cin)")
        let rows = x.count / max(cin, 1)
        guard rows > 0 && cout > 0 else { return }
        guard cin > 0 else { // an empty sum: y = b (or y += b)
            if !accumulate { Y.initialize(repeating: 0) }
            if let bias { for r in 0..<rows { for j in 0..<cout { Y[r * cout + j] += bias.storage[j] } } }
            return
        }
        if let bias { // y (+)= b first, then y += x·Wᵀ
            bias.storage.withUnsafeBufferPointer { B in
                for r in 0..<rows {
                    let yr = Y.baseAddress! + r * cout
                    if accumulate {
                        for j in 0..<cout { yr[j] += B[j] }
                    } else {
                        yr.update(from: B.baseAddress!, count: cout)
                    }
                }
            }
        }
        let beta: Float = accumulate || bias != nil ? 1 : 0
        switch stored {
        case .bf16(let m):
            x.storage.withUnsafeBufferPointer { X in
                if rows == 1 {
                    gemvRowsBF16(
                        m, x: X.baseAddress!, y: Y.baseAddress!, accumulate: beta == 1, threads: compute.threads)
                } else {
                    productPanels(X.baseAddress!, rows: rows, into: Y.baseAddress!, beta: beta, compute: compute) {
                        m.widenRows($0, into: $1)
                    }
                }
            }
        case .q8_0(let m):
            x.storage.withUnsafeBufferPointer { X in
                if rows == 1 {
                    gemvRowsQ8(m, x: X.baseAddress!, y: Y.baseAddress!, accumulate: beta == 1, threads: compute.threads)
                } else {
                    productPanels(X.baseAddress!, rows: rows, into: Y.baseAddress!, beta: beta, compute: compute) {
                        m.widenRows($0, into: $1)
                    }
                }
            }
        case .f32(let weight):
            x.storage.withUnsafeBufferPointer { X in
                weight.storage.withUnsafeBufferPointer { W in
                    if rows == 1 && compute.gemv == .rows {
                        gemvRows(
                            W.baseAddress!, rows: cout, cols: cin, x: X.baseAddress!, y: Y.baseAddress!,
                            accumulate: beta == 1, threads: compute.threads)
                    } else if rows == 1 {
                        BLAS.use(threads: compute.threads)
                        cblas_sgemv(
                            CblasRowMajor, CblasNoTrans, Int32(cout), Int32(cin), 1,
                            W.baseAddress!, Int32(cin), X.baseAddress!, 1, beta, Y.baseAddress!, 1)
                    } else {
                        BLAS.use(threads: compute.threads)
                        BLAS.sgemm(
                            transB: true, m: rows, n: cout, k: cin, a: X.baseAddress!, lda: cin,
                            b: W.baseAddress!, ldb: cin, beta: beta, c: Y.baseAddress!, ldc: cout)
                    }
                }
            }
        }
    }

    /// Bytes of weights widened at a time ahead of sgemm (per thread). sgemm packs all of x once per call, so the
    /// panel sets how often x is packed: at 1 MiB (64 rows of a 3584-wide weight) a 288-token prefill packed 4.5×
    /// more bytes of x than of weights and packing took a third of the time; 8 MiB panels (out of L2, in L3) took
    /// the Eagle2.5-8B-shaped time to first token from 26.0 to 21.9 s (16 MiB: 21.7–22.0, 64 MiB: 25.5).
    static let panelBytes = 8 << 20

    /// y (rows, C_out) = β·y + x·Wᵀ for a W held in another dtype (BF16, q8_0): W's rows are split into one
    /// contiguous range per thread; each thread widens panels of its rows (`widen(rows, buffer)`, `panelBytes`)
    /// into its own fp32 buffer and runs a one-thread sgemm into its columns of y. Prefill
    /// keeps sgemm's speed, the weights are read once, and no OpenBLAS threads are woken per panel.
    private func productPanels(
        _ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, beta: Float, compute: Compute,
        widen: (Range<Int>, UnsafeMutablePointer<Float>) -> Void
    ) {
        let cin = inFeatures, cout = outFeatures
        let parts = max(1, min(compute.threads, cout / 16))
        let panel = min((cout + parts - 1) / parts, max(16, Linear.panelBytes / (cin * 4) / 16 * 16))
        BLAS.use(threads: 1)
        nonisolated(unsafe) let widenRows = widen // each part widens and writes only its own rows and columns
        nonisolated(unsafe) let (xp, yp) = (x, y)
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let lo = cout * p / parts, hi = cout * (p + 1) / parts
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: panel * cin)
            defer { buffer.deallocate() }
            var j0 = lo
            while j0 < hi {
                let n = min(panel, hi - j0)
                widenRows(j0..<(j0 + n), buffer)
                BLAS.sgemm(
                    transB: true, m: rows, n: n, k: cin, a: xp, lda: cin, b: buffer, ldb: cin, beta: beta, c: yp + j0,
                    ldc: cout)
                j0 += n
            }
        }
    }
}
