// Elementwise operations, activations and normalisations over the last dimension.
//
// Conventions: every op returns a new tensor; reductions (softmax, LayerNorm, RMSNorm) run over the
// last dimension C and accumulate in Double, so a row of 4608 channels loses no precision to summation
// order (PyTorch accumulates in float with a different order; the difference is inside the fp32-op row
// of docs/tolerances.md).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _CKernels

#if canImport(Glibc)
import Glibc
#endif

extension Tensor {
    /// Applies `f` to every element.
    @inlinable
    public func map(_ f: (Float) -> Float) -> Tensor {
        Tensor(shape: shape, storage: storage.map(f))
    }

    /// Elementwise combination of two tensors of the same shape, or `other` broadcast along the
    /// leading dimensions when its shape is a suffix of this shape (e.g. (T, C) with (C)).
    public func zipWith(_ other: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        if other.shape == shape {
            var out = storage
            for i in 0..<out.count { out[i] = f(out[i], other.storage[i]) }
            return Tensor(shape: shape, storage: out)
        }
        precondition(
            other.rank <= rank && Array(shape.suffix(other.rank)) == other.shape,
            "zipWith: cannot broadcast \(other.shape) to \(shape)")
        let inner = max(other.count, 1)
        var out = storage
        for i in 0..<out.count { out[i] = f(out[i], other.storage[i % inner]) }
        return Tensor(shape: shape, storage: out)
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { a.zipWith(b, +) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { a.zipWith(b, -) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { a.zipWith(b, *) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.map { $0 * s } }

    /// Largest |element| (0 for an empty tensor).
    public var maxAbs: Float { storage.reduce(0) { Swift.max($0, abs($1)) } }
    /// Mean of all elements, accumulated in Double.
    public var mean: Double { storage.isEmpty ? 0 : storage.reduce(0.0) { $0 + Double($1) } / Double(count) }
}

// MARK: - Activations

/// GELU, tanh approximation (`gelu_pytorch_tanh`, SigLIP's MLP):
/// gelu(x) = ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
@inlinable
public func geluTanh(_ x: Float) -> Float {
    let c: Float = 0.7978845608028654 // √(2/π)
    return 0.5 * x * (1 + tanh(c * (x + 0.044715 * x * x * x)))
}

/// GELU, exact form (`nn.GELU()`, Eagle's `mlp1`): gelu(x) = ½·x·(1 + erf(x/√2)).
@inlinable
public func geluErf(_ x: Float) -> Float {
    Float(0.5 * Double(x) * (1 + erf(Double(x) * 0.7071067811865476)))
}

/// SiLU (swish), Qwen2's MLP gate: silu(x) = x · σ(x) = x / (1 + e^(−x)).
@inlinable
public func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }

/// silu(x) with `fastExp`: plain arithmetic that LLVM vectorises in a loop (Qwen2's SwiGLU fast path).
@inlinable @inline(__always)
public func fastSilu(_ x: Float) -> Float { x / (1 + fastExp(-x)) }

/// e^x (the vectorised exp of the fast paths, from SigLIP2's tower): e^x = 2^n · e^r with
/// n = round(x·log₂e), r = x − n·ln2, e^r by the degree-6 Cephes polynomial; inputs clamped to
/// [−87.3, 88.3], where fp32 e^x is normal. Branch-free plain Float arithmetic, so a loop over contiguous
/// memory calling it is auto-vectorised by LLVM (8 lanes with AVX2, 16 with AVX-512). Rounding
/// x·log₂e to an integer uses the 1.5·2²³ trick: adding it leaves round(x·log₂e) in the low mantissa
/// bits, which also give 2ⁿ's exponent field. Measured worst relative error vs Double exp: 8e-8.
@inlinable @inline(__always)
public func fastExp(_ x: Float) -> Float {
    let xc = Swift.min(Swift.max(x, -87.3), 88.3)
    let t = xc * 1.4426950408889634 + 12_582_912.0
    let n = t - 12_582_912.0
    var r = xc - n * 0.693359375
    r = r - n * -2.12194440e-4
    var p: Float = 1.9875691500e-4
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let er = p * (r * r) + r + 1
    let bits = (t.bitPattern &- 0x4B40_0000 &+ 127) &<< 23
    return er * Float(bitPattern: bits)
}

/// max of row[0 ..< n] (−∞ for n = 0), with eight independent running maxima (one chain would wait on each
/// compare; `pointwiseMax` on SIMD16 compiles to lane-by-lane compares through the stack). Exact: the order of a max
/// does not matter.
@inlinable @inline(__always)
public func rowMax(_ row: UnsafePointer<Float>, _ n: Int) -> Float {
    var m0 = -Float.infinity, m1 = m0, m2 = m0, m3 = m0, m4 = m0, m5 = m0, m6 = m0, m7 = m0
    var j = 0
    while j + 8 <= n {
        m0 = Swift.max(m0, row[j]); m1 = Swift.max(m1, row[j + 1]); m2 = Swift.max(m2, row[j + 2])
        m3 = Swift.max(m3, row[j + 3]); m4 = Swift.max(m4, row[j + 4]); m5 = Swift.max(m5, row[j + 5])
        m6 = Swift.max(m6, row[j + 6]); m7 = Swift.max(m7, row[j + 7])
        j += 8
    }
    var m = Swift.max(Swift.max(Swift.max(m0, m1), Swift.max(m2, m3)), Swift.max(Swift.max(m4, m5), Swift.max(m6, m7)))
    while j < n { m = Swift.max(m, row[j]); j += 1 }
    return m
}

/// row[j] ← e^(row[j] − m) for j < n, and their sum: the exponentials of a softmax row. `eaglet_exp_sum` does it
/// with `fastExp`'s arithmetic operation for operation (so each value is `fastExp(row[j] − m)` bit for bit) 16 or 8
/// lanes wide (AVX-512 or AVX2, chosen at run time); Swift, built for baseline x86-64, ran this loop 4 lanes wide.
public func expInPlaceAndSum(_ row: UnsafeMutablePointer<Float>, _ n: Int, minus m: Float) -> Float {
    eaglet_exp_sum(row, n, m)
}

// MARK: - Reductions over the last dimension

extension Tensor {
    /// Softmax over the last dimension: y_i = e^(x_i − max x) / Σ_j e^(x_j − max x).
    /// Rows that are entirely −∞ give zeros (a fully masked row attends to nothing).
    public func softmaxLast() -> Tensor {
        let c = shape.last ?? 1
        var out = storage
        out.withUnsafeMutableBufferPointer { y in
            for r in 0..<(count / max(c, 1)) {
                let base = r * c
                var m = -Float.infinity
                for i in 0..<c { m = Swift.max(m, y[base + i]) }
                if m == -.infinity {
                    for i in 0..<c { y[base + i] = 0 }
                    continue
                }
                var s = 0.0
                for i in 0..<c {
                    let e = exp(y[base + i] - m)
                    y[base + i] = e
                    s += Double(e)
                }
                let inv = Float(1 / s)
                for i in 0..<c { y[base + i] *= inv }
            }
        }
        return Tensor(shape: shape, storage: out)
    }

    /// LayerNorm over the last dimension C (PyTorch `nn.LayerNorm`, biased variance):
    /// y = (x − μ) / √(σ² + eps) · weight + bias, with μ and σ² the mean and variance of the row.
    public func layerNorm(weight: Tensor, bias: Tensor?, eps: Float) -> Tensor {
        let c = shape.last ?? 1
        precondition(weight.count == c && (bias?.count ?? c) == c, "layerNorm: weight/bias do not match width \(c)")
        var out = storage
        let w = weight.storage, b = bias?.storage
        for r in 0..<(count / max(c, 1)) {
            let base = r * c
            var mu = 0.0
            for i in 0..<c { mu += Double(out[base + i]) }
            mu /= Double(c)
            var v = 0.0
            for i in 0..<c { let d = Double(out[base + i]) - mu; v += d * d }
            v /= Double(c)
            let inv = 1 / (v + Double(eps)).squareRoot()
            for i in 0..<c {
                out[base + i] = Float((Double(out[base + i]) - mu) * inv) * w[i] + (b?[i] ?? 0)
            }
        }
        return Tensor(shape: shape, storage: out)
    }

    /// RMSNorm over the last dimension C (Qwen2RMSNorm, fp32 statistics):
    /// y = x / √(mean(x²) + eps) · weight.
    public func rmsNorm(weight: Tensor, eps: Float) -> Tensor {
        let c = shape.last ?? 1
        precondition(weight.count == c, "rmsNorm: weight does not match width \(c)")
        var out = storage
        out.withUnsafeMutableBufferPointer { Y in
            weight.storage.withUnsafeBufferPointer { W in
                rmsNormRows(
                    Y.baseAddress!, into: Y.baseAddress!, rows: count / max(c, 1), width: c, weight: W.baseAddress!,
                    eps: eps)
            }
        }
        return Tensor(shape: shape, storage: out)
    }
}

/// RMSNorm of `rows` rows of width C, y = x / √(mean(x²) + eps) · w, the sum of squares in Double;
/// `y` may be `x`. The pointer form of `Tensor.rmsNorm`, for callers that keep their own buffers.
public func rmsNormRows(
    _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, width c: Int,
    weight w: UnsafePointer<Float>, eps: Float
) {
    for r in 0..<rows {
        let xr = x + r * c, yr = y + r * c
        var ss = 0.0
        for i in 0..<c { ss += Double(xr[i]) * Double(xr[i]) }
        let inv = Float(1 / (ss / Double(c) + Double(eps)).squareRoot())
        for i in 0..<c { yr[i] = xr[i] * inv * w[i] }
    }
}
