// Vectorised exp, softmax rows and the fused bias + gelu-tanh of the fast encoder path.
//
// What it is: the only non-BLAS arithmetic that matters for speed in the tower. A So400m tile runs
// 27 × 16 softmaxes over 1024 × 1024 scores (≈ 450 M exps) and 27 gelus over 1024 × 4304 (≈ 120 M
// tanhs); through scalar libm that alone costs seconds. Here exp is plain arithmetic that LLVM
// vectorises (16 lanes with AVX-512): e^x = 2^n · e^r with n = round(x·log₂e), r = x − n·ln2 (split in two constants
// for accuracy), and
// e^r from the degree-6 Cephes `expf` polynomial on |r| ≤ ½·ln2 (≈ 1–2 ulp). gelu-tanh uses
// ½·x·(1 + tanh u) = x · σ(2u) = x / (1 + e^(−2u)), u = √(2/π)·(x + 0.044715·x³).
// What it is not: a general math library; inputs are clamped to [−87.3, 88.3] (fastExp in Tensor/Ops.swift),
// where fp32 e^x is normal, so e^(−∞) gives ≈ 1e-38 instead of 0 (harmless in a softmax without masking).
import Dispatch
import Tensor

// fastExp (e^x by range reduction and the Cephes polynomial) lives in Tensor/Ops.swift, shared with Qwen2's SwiGLU.

/// gelu_tanh(x) = x · σ(2u) = x / (1 + e^(−2u)), u = √(2/π)·(x + 0.044715·x³).
@inline(__always)
public func fastGelu(_ x: Float) -> Float {
    let u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
    return x / (1 + fastExp(-2 * u))
}

/// Softmax of `count` floats at `row`, in place: y_i = e^(x_i − max) / Σ e^(x_j − max).
@inline(__always)
func softmaxRow(_ row: UnsafeMutablePointer<Float>, _ count: Int) {
    // max with eight independent accumulators (a single chain would serialise on latency)
    var m0 = -Float.infinity, m1 = m0, m2 = m0, m3 = m0, m4 = m0, m5 = m0, m6 = m0, m7 = m0
    var i = 0
    while i + 8 <= count {
        m0 = Swift.max(m0, row[i]); m1 = Swift.max(m1, row[i + 1]); m2 = Swift.max(m2, row[i + 2]);
        m3 = Swift.max(m3, row[i + 3])
        m4 = Swift.max(m4, row[i + 4]); m5 = Swift.max(m5, row[i + 5]); m6 = Swift.max(m6, row[i + 6]);
        m7 = Swift.max(m7, row[i + 7])
        i += 8
    }
    var m = Swift.max(Swift.max(Swift.max(m0, m1), Swift.max(m2, m3)), Swift.max(Swift.max(m4, m5), Swift.max(m6, m7)))
    while i < count { m = Swift.max(m, row[i]); i += 1 }
    for j in 0..<count { row[j] = fastExp(row[j] - m) }
    var acc = SIMD16<Float>(repeating: 0)
    i = 0
    while i + 16 <= count { acc += UnsafeRawPointer(row + i).loadUnaligned(as: SIMD16<Float>.self); i += 16 }
    var s = acc.sum()
    while i < count { s += row[i]; i += 1 }
    let inv = 1 / s
    for j in 0..<count { row[j] *= inv }
}

/// x[r, j] = gelu_tanh(x[r, j] + bias[j]) for a (rows, cols) block, in place.
@inline(__always)
func biasGeluRows(_ x: UnsafeMutablePointer<Float>, rows: Range<Int>, cols: Int, bias: UnsafePointer<Float>) {
    for r in rows {
        let row = x + r * cols
        for j in 0..<cols { row[j] = fastGelu(row[j] + bias[j]) }
    }
}

/// Splits 0..<n into `parts` contiguous ranges and runs them concurrently (one part: inline).
@inline(__always)
func parallelRanges(_ n: Int, parts: Int, _ body: (Range<Int>) -> Void) {
    let p = max(1, min(parts, n))
    if p == 1 { body(0..<n); return }
    // nonisolated(unsafe): every caller's body writes only what its own range owns (rows, or heads' scores and
    // columns).
    nonisolated(unsafe) let disjointBody = body
    DispatchQueue.concurrentPerform(iterations: p) { t in disjointBody((t * n / p)..<((t + 1) * n / p)) }
}

/// Softmax over the last dimension with the vectorised exp (the fast path's twin of `Tensor.softmaxLast`).
public func fastSoftmaxLast(_ x: Tensor, threads: Int = 1) -> Tensor {
    var out = x
    let c = x.shape.last ?? 1
    let rows = x.count / max(c, 1)
    out.withUnsafeMutableStorage { y in
        let base = y.baseAddress!
        parallelRanges(rows, parts: threads) { r in for i in r { softmaxRow(base + i * c, c) } }
    }
    return out
}

/// gelu-tanh of every element with the vectorised exp (the fast path's twin of `map(geluTanh)`).
public func fastGeluTanh(_ x: Tensor) -> Tensor {
    var out = x
    let zero = [Float](repeating: 0, count: x.count)
    out.withUnsafeMutableStorage { y in
        zero.withUnsafeBufferPointer { z in
            biasGeluRows(y.baseAddress!, rows: 0..<1, cols: x.count, bias: z.baseAddress!)
        }
    }
    return out
}
