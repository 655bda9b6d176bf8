// Vectorised exp, softmax rows and the fused bias + gelu-tanh of the fast encoder path.
//
// What it is: the only non-BLAS arithmetic that matters for speed in the tower. A So400m tile runs
// 27 × 16 softmaxes over 1024 × 1024 scores (≈ 450 M exps) and 27 gelus over 1024 × 4304 (≈ 120 M
// tanhs); through scalar libm that alone costs seconds. Here exp is evaluated 16 lanes at a time:
// e^x = 2^n · e^r with n = round(x·log₂e), r = x − n·ln2 (split in two constants for accuracy), and
// e^r from the degree-6 Cephes `expf` polynomial on |r| ≤ ½·ln2 (≈ 1–2 ulp). gelu-tanh uses
// ½·x·(1 + tanh u) = x · σ(2u) = x / (1 + e^(−2u)), u = √(2/π)·(x + 0.044715·x³).
// What it is not: a general math library; inputs are clamped to [−87.3, 88.7], where fp32 e^x is
// normal, so e^(−∞) gives ≈ 1e-38 instead of 0 (harmless in a softmax without masking).
import Dispatch
import Tensor

public typealias Lanes = SIMD16<Float>

@inline(__always)
func expLanes(_ x: Lanes) -> Lanes {
    let xc = x.clamped(lowerBound: Lanes(repeating: -87.3), upperBound: Lanes(repeating: 88.7))
    let n = (xc * 1.4426950408889634).rounded(.toNearestOrEven)
    var r = xc - n * 0.693359375
    r = r - n * -2.12194440e-4
    var p = Lanes(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let er = p * (r * r) + r + 1
    let bits = (SIMD16<Int32>(n, rounding: .toNearestOrEven) &+ 127) &<< 23
    return er * unsafeBitCast(bits, to: Lanes.self)
}

/// e^x for one float by the same polynomial (used for row tails).
@inline(__always)
func expScalar(_ x: Float) -> Float { expLanes(Lanes(repeating: x))[0] }

/// Softmax of `count` floats at `row`, in place: y_i = e^(x_i − max) / Σ e^(x_j − max).
@inline(__always)
func softmaxRow(_ row: UnsafeMutablePointer<Float>, _ count: Int) {
    let vec = count / 16 * 16
    var mv = Lanes(repeating: -.infinity)
    var i = 0
    while i < vec {
        mv = pointwiseMax(mv, UnsafeRawPointer(row + i).loadUnaligned(as: Lanes.self))
        i += 16
    }
    var m = mv.max()
    for j in vec..<count { m = max(m, row[j]) }
    var sv = Lanes(repeating: 0)
    let mvec = Lanes(repeating: m)
    i = 0
    while i < vec {
        let e = expLanes(UnsafeRawPointer(row + i).loadUnaligned(as: Lanes.self) - mvec)
        UnsafeMutableRawPointer(row + i).storeBytes(of: e, as: Lanes.self)
        sv += e
        i += 16
    }
    var s = sv.sum()
    for j in vec..<count { let e = expScalar(row[j] - m); row[j] = e; s += e }
    let inv = 1 / s
    let iv = Lanes(repeating: inv)
    i = 0
    while i < vec {
        let v = UnsafeRawPointer(row + i).loadUnaligned(as: Lanes.self) * iv
        UnsafeMutableRawPointer(row + i).storeBytes(of: v, as: Lanes.self)
        i += 16
    }
    for j in vec..<count { row[j] *= inv }
}

@inline(__always)
func geluLanes(_ x: Lanes) -> Lanes {
    let u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
    return x / (1 + expLanes(-2 * u))
}

/// x[r, j] = gelu_tanh(x[r, j] + bias[j]) for a (rows, cols) block, in place.
@inline(__always)
func biasGeluRows(_ x: UnsafeMutablePointer<Float>, rows: Range<Int>, cols: Int, bias: UnsafePointer<Float>) {
    let vec = cols / 16 * 16
    for r in rows {
        let row = x + r * cols
        var j = 0
        while j < vec {
            let v = UnsafeRawPointer(row + j).loadUnaligned(as: Lanes.self) + UnsafeRawPointer(bias + j).loadUnaligned(as: Lanes.self)
            UnsafeMutableRawPointer(row + j).storeBytes(of: geluLanes(v), as: Lanes.self)
            j += 16
        }
        for k in vec..<cols { row[k] = geluLanes(Lanes(repeating: row[k] + bias[k]))[0] }
    }
}

/// Splits 0..<n into `parts` contiguous ranges and runs them concurrently (one part: inline).
@inline(__always)
func parallelRanges(_ n: Int, parts: Int, _ body: (Range<Int>) -> Void) {
    let p = max(1, min(parts, n))
    if p == 1 { body(0..<n); return }
    DispatchQueue.concurrentPerform(iterations: p) { t in body((t * n / p)..<((t + 1) * n / p)) }
}

/// Softmax over the last dimension with the vectorised exp (the fast path's twin of `Tensor.softmaxLast`).
public func fastSoftmaxLast(_ x: Tensor, threads: Int = 1) -> Tensor {
    var out = x
    let c = x.shape.last ?? 1
    let rows = x.count / max(c, 1)
    out.storage.withUnsafeMutableBufferPointer { y in
        let base = y.baseAddress!
        parallelRanges(rows, parts: threads) { r in for i in r { softmaxRow(base + i * c, c) } }
    }
    return out
}

/// gelu-tanh of every element with the vectorised exp (the fast path's twin of `map(geluTanh)`).
public func fastGeluTanh(_ x: Tensor) -> Tensor {
    var out = x
    let zero = [Float](repeating: 0, count: x.count)
    out.storage.withUnsafeMutableBufferPointer { y in
        zero.withUnsafeBufferPointer { z in biasGeluRows(y.baseAddress!, rows: 0..<1, cols: x.count, bias: z.baseAddress!) }
    }
    return out
}
