// The one tolerance table of Eaglet. docs/tolerances.md is its human-readable twin; a test
// (`toleranceTableMatchesDocs`) fails when the two disagree, so neither can drift.

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
    public static let exact = Tolerance(name: "exact", atol: 0, rtol: 0,
        reason: "Copies, layout changes and dtype conversions move bits; any difference is a bug.")
    /// A single fp32 elementwise op or one reduction over a row (softmax, LayerNorm, GELU).
    public static let fp32Op = Tolerance(name: "fp32-op", atol: 1e-6, rtol: 1e-5,
        reason: "One op: libm vs PyTorch's vectorised exp/tanh/erf differ by a few ulp; reductions sum in another order.")
    /// An fp32 matmul with inner size K ≤ 4096 against PyTorch or against the naive loop.
    public static let fp32Matmul = Tolerance(name: "fp32-matmul", atol: 1e-5, rtol: 1e-4,
        reason: "Blocked sgemm sums K products in another order; error grows like √K·ulp·|a||b|, ~1e-5 relative at K = 4096.")
    /// Outputs of a whole block or layer (attention + MLP) against transformers, fp32.
    public static let fp32Block = Tolerance(name: "fp32-block", atol: 1e-4, rtol: 1e-4,
        reason: "A block chains ~6 matmuls, a softmax and norms; rounding differences compound to ~1e-5..1e-4 relative.")

    /// Every row of the table, in the order docs/tolerances.md lists them.
    public static let table: [Tolerance] = [.exact, .fp32Op, .fp32Matmul, .fp32Block]

    /// Looks a row up by name (fixtures' manifests name their tolerance).
    public static func named(_ name: String) -> Tolerance? { table.first { $0.name == name } }
}
