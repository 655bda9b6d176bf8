// Rotary position embedding (RoPE) as Qwen2 uses it: the "half-rotation" (GPT-NeoX) convention.
//
// What it is: inv_freq_k = θ^(−2k/D) for k = 0 … D/2−1; for a token at position p the angle of pair k is
// p·inv_freq_k, and cos/sin are laid out (T, D) as concat(angles, angles). A head vector x (D) becomes
//     x' = x·cos + rotate_half(x)·sin,   rotate_half(x) = concat(−x[D/2:], x[:D/2])
// so dimension i is rotated together with dimension i + D/2 (docs/spec.md §5.2). Angles, cos and sin are fp32,
// as in transformers (the product p·inv_freq is rounded to fp32 before cos/sin, which matters at large p).
// What it is not: scaled variants (linear, dynamic NTK, YaRN, M-RoPE); the config rejects those.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Tensor

/// cos/sin tables for the positions of a batch of tokens, and their application to q and k.
public struct RotaryEmbedding: Sendable {
    public let headDim: Int
    public let theta: Double
    /// inv_freq (D/2), fp32: 1 / θ^(2k/D).
    public let invFreq: [Float]

    public init(headDim: Int, theta: Double) {
        precondition(headDim > 0 && headDim % 2 == 0, "RotaryEmbedding: head dim \(headDim) must be even")
        self.headDim = headDim
        self.theta = theta
        invFreq = (0..<(headDim / 2)).map { k in
            let exponent = Float(2 * k) / Float(headDim) // fp32, as torch.arange(...).float() / dim
            return 1 / Float(pow(theta, Double(exponent)))
        }
    }

    /// cos and sin, each (T, D), for `positions` (T).
    public func cosSin(positions: [Int]) -> (cos: Tensor, sin: Tensor) {
        let d = headDim, half = d / 2
        var c = [Float](repeating: 0, count: positions.count * d)
        var s = c
        for (t, p) in positions.enumerated() {
            for k in 0..<half {
                let angle = Float(p) * invFreq[k] // fp32 product
                let cv = cosf(angle), sv = sinf(angle)
                c[t * d + k] = cv; c[t * d + k + half] = cv
                s[t * d + k] = sv; s[t * d + k + half] = sv
            }
        }
        return (Tensor(shape: [positions.count, d], storage: c), Tensor(shape: [positions.count, d], storage: s))
    }

    /// Rotates token-major heads in place: `x` is (T, heads·D) with head n of token t at
    /// [t, n·D ..< (n+1)·D]; `cos`/`sin` are (T, D).
    public func apply(_ x: inout Tensor, heads: Int, cos: Tensor, sin: Tensor) {
        let d = headDim
        let t = cos.shape[0]
        precondition(x.count == t * heads * d, "RotaryEmbedding.apply: x \(x.shape) is not (\(t), \(heads)·\(d))")
        x.withUnsafeMutableStorage { X in
            cos.storage.withUnsafeBufferPointer { C in
                sin.storage.withUnsafeBufferPointer { S in
                    RotaryEmbedding.rotate(
                        X.baseAddress!, tokens: t, heads: heads, headDim: d, cos: C.baseAddress!, sin: S.baseAddress!)
                }
            }
        }
    }

    /// The pointer form of `apply`: x (T, heads·D) token-major, cos and sin (T, D), rotated in place.
    public static func rotate(
        _ x: UnsafeMutablePointer<Float>, tokens t: Int, heads: Int, headDim d: Int,
        cos: UnsafePointer<Float>, sin: UnsafePointer<Float>
    ) {
        let half = d / 2
        for ti in 0..<t {
            let c = cos + ti * d, s = sin + ti * d
            for n in 0..<heads {
                let base = x + (ti * heads + n) * d
                for k in 0..<half {
                    let a = base[k], b = base[k + half]
                    // x'[k] = a·cos − b·sin ; x'[k+D/2] = b·cos + a·sin
                    base[k] = a * c[k] - b * s[k]
                    base[k + half] = b * c[k + half] + a * s[k + half]
                }
            }
        }
    }

    /// The textbook form on head-major (H, T, D): x·cos + rotate_half(x)·sin, building rotate_half.
    public func applyNaive(_ x: Tensor, cos: Tensor, sin: Tensor) -> Tensor {
        let d = headDim, half = d / 2
        precondition(
            x.rank == 3 && x.shape[2] == d && x.shape[1] == cos.shape[0], "applyNaive: x \(x.shape) vs cos \(cos.shape)"
        )
        var out = x
        for h in 0..<x.shape[0] {
            for t in 0..<x.shape[1] {
                let base = (h * x.shape[1] + t) * d
                let row = Array(x.storage[base..<(base + d)])
                let rotated = row[half...].map { -$0 } + row[..<half]
                for i in 0..<d {
                    out[flat: base + i] = row[i] * cos.storage[t * d + i] + rotated[i] * sin.storage[t * d + i]
                }
            }
        }
        return out
    }
}
