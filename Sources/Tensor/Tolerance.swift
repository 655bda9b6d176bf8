// The one tolerance table of Eaglet and the one closeness check over it: |a − b| ≤ atol + rtol·|b|,
// NaN/±Inf patterns must match exactly, and a report names the worst index with both values.
// docs/tolerances.md is the table's human-readable twin; a test (`toleranceTableMatchesDocs`) fails when
// the two disagree. It lives here, not in the test support, so `gpu-check` judges with the same rows.

/// An elementwise closeness bound: |a − b| ≤ atol + rtol · |b| (b the reference).
public struct Tolerance: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let atol: Float
    public let rtol: Float
    /// Why this bound and not a tighter one.
    public let reason: String

    public init(name: String, atol: Float, rtol: Float, reason: String) {
        self.name = name; self.atol = atol; self.rtol = rtol; self.reason = reason
    }

    public var description: String { "\(name) (atol \(atol), rtol \(rtol))" }

    /// Bit-for-bit equality: integer-valued results, dtype round trips, layout ops.
    public static let exact = Tolerance(
        name: "exact", atol: 0, rtol: 0,
        reason: "Copies, layout changes and dtype conversions move bits; any difference is a bug.")
    /// A single fp32 elementwise op or one reduction over a row (softmax, LayerNorm, GELU).
    public static let fp32Op = Tolerance(
        name: "fp32-op", atol: 1e-6, rtol: 1e-5,
        reason:
            "One op: libm vs PyTorch's vectorised exp/tanh/erf differ by a few ulp; reductions sum in another order.")
    /// An fp32 matmul with inner size K ≤ 4096 against PyTorch or against the naive loop.
    public static let fp32Matmul = Tolerance(
        name: "fp32-matmul", atol: 1e-5, rtol: 1e-4,
        reason:
            "Blocked sgemm sums K products in another order; error grows like √K·ulp·|a||b|, ~1e-5 relative at K = 4096."
    )
    /// Outputs of a whole block or layer (attention + MLP) against transformers, fp32.
    public static let fp32Block = Tolerance(
        name: "fp32-block", atol: 1e-4, rtol: 1e-4,
        reason: "A block chains ~6 matmuls, a softmax and norms; rounding differences compound to ~1e-5..1e-4 relative."
    )

    /// A product whose activation is quantized to q8_0 as decode does (weights already dequantized on both sides).
    public static let q8_0 = Tolerance(
        name: "q8_0", atol: 2e-2, rtol: 2e-2,
        reason:
            "x rounded to 255 levels per 32 values: error ≈ √K·rms(w)·max|x|/254/√3, about 1 % of an output of unit scale."
    )

    /// A bf16 block or layer (bf16 weights and activations, fp32 accumulation and statistics) against fp32.
    public static let bf16 = Tolerance(
        name: "bf16", atol: 3e-2, rtol: 3e-2,
        reason:
            "bf16 keeps 8 significant bits (rounding 2^-9 ≈ 2e-3 per value); weights, each product's output, P and the "
            + "residual stream are rounded, and a layer chains a dozen such roundings: ~1e-2 of an output of unit scale."
    )

    /// Every row of the table, in the order docs/tolerances.md lists them.
    public static let table: [Tolerance] = [.exact, .fp32Op, .fp32Matmul, .fp32Block, .q8_0, .bf16]

    /// Looks a row up by name (fixtures' manifests name their tolerance).
    public static func named(_ name: String) -> Tolerance? { table.first { $0.name == name } }
}

/// What a comparison found. `maxRelative` is the normwise figure max|a−b| / max|b| used everywhere in
/// Eaglet when it says "relative error".
public struct CloseReport: Sendable, CustomStringConvertible {
    public var count = 0
    public var misses = 0
    public var worstIndex: Int? = nil
    public var worstActual: Float = 0
    public var worstExpected: Float = 0
    /// Largest (|a−b| − bound) seen, the amount by which the worst element missed.
    public var worstExcess: Float = -.infinity
    public var maxAbsDiff: Float = 0
    public var maxAbsRef: Float = 0
    public var shapeMismatch: String? = nil

    public init() {}

    public var passed: Bool { shapeMismatch == nil && misses == 0 }
    public var maxRelative: Float { maxAbsRef > 0 ? maxAbsDiff / maxAbsRef : maxAbsDiff }

    public var description: String {
        if let s = shapeMismatch { return s }
        var s = "\(misses) of \(count) elements outside tolerance; max |a−b| = \(maxAbsDiff), relative \(maxRelative)"
        if let w = worstIndex { s += "; worst at flat index \(w): actual \(worstActual), expected \(worstExpected)" }
        return s
    }
}

/// Compares `actual` with the reference `expected` elementwise under `tolerance`.
public func closeness(_ actual: [Float], _ expected: [Float], _ tolerance: Tolerance) -> CloseReport {
    var r = CloseReport()
    guard actual.count == expected.count else {
        r.shapeMismatch = "element counts differ: actual \(actual.count), expected \(expected.count)"
        return r
    }
    r.count = actual.count
    for i in 0..<actual.count {
        let a = actual[i], b = expected[i]
        var miss = false
        var excess: Float = 0
        if a.isNaN || b.isNaN {
            miss = a.isNaN != b.isNaN
            excess = miss ? .infinity : 0
        } else if a.isInfinite || b.isInfinite {
            miss = a != b
            excess = miss ? .infinity : 0
        } else {
            let d = abs(a - b)
            r.maxAbsDiff = max(r.maxAbsDiff, d)
            r.maxAbsRef = max(r.maxAbsRef, abs(b))
            let bound = tolerance.atol + tolerance.rtol * abs(b)
            excess = d - bound
            miss = d > bound
        }
        if miss { r.misses += 1 }
        if miss && excess > r.worstExcess {
            r.worstExcess = excess; r.worstIndex = i; r.worstActual = a; r.worstExpected = b
        }
    }
    return r
}
