// Seeded weights that Python and Swift reproduce bit for bit.
//
// Fixtures at real widths (a So400m layer has 15 M weights) are too large to commit, so both sides
// generate the same weights from a seed: SplitMix64 (Steele, Lea, Flood 2014), a counter-based
// generator whose every step is 64-bit integer arithmetic, then the top 24 bits → a float in [−1, 1)
// exactly representable in Float32. `Fixtures/generate/fixturelib.py` holds the Python twin.

/// SplitMix64: state += 0x9E3779B97F4A7C15; z = state; z = (z ^ z>>30)·0xBF58476D1CE4E5B9;
/// z = (z ^ z>>27)·0x94D049BB133111EB; return z ^ z>>31.
public struct SplitMix64: Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A float in [−1, 1): (top 24 bits) · 2⁻²³ − 1. Exact in Float32.
    @inlinable
    public mutating func nextSigned() -> Float {
        Float(next() >> 40) * (1.0 / 8_388_608.0) - 1
    }
}

extension Tensor {
    /// A tensor of `shape` with elements `scale · u`, u uniform in [−1, 1) from SplitMix64(seed),
    /// drawn in row-major order. Identical to `fixturelib.seeded(shape, seed, scale)` in Python.
    public static func seeded(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let n = elementCount(shape)
        var s = [Float](repeating: 0, count: n)
        for i in 0..<n { s[i] = rng.nextSigned() * scale }
        return Tensor(shape: shape, storage: s)
    }
}
