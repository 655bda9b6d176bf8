// Vectorised exp, softmax rows and the fused bias + gelu-tanh of the fast encoder path.
//
// What it is: the only non-BLAS arithmetic that matters for speed in the tower. A So400m tile runs
// 27 × 16 softmaxes over 1024 × 1024 scores (≈ 450 M exps) and 27 gelus over 1024 × 4304 (≈ 120 M
// tanhs); through scalar libm that alone costs seconds. Here exp is plain arithmetic (softmax rows through
// `eaglet_exp_sum`, the fc1 bias + gelu through `eaglet_bias_gelu_tanh`, 16 or 8 lanes chosen at run time):
// e^x = 2^n · e^r with n = round(x·log₂e), r = x − n·ln2 (split in two constants for accuracy), and e^r from the
// degree-6 Cephes `expf` polynomial on |r| ≤ ½·ln2 (≈ 1–2 ulp). gelu-tanh uses
// ½·x·(1 + tanh u) = x · σ(2u) = x / (1 + e^(−2u)), u = √(2/π)·(x + 0.044715·x³).
// What it is not: a general math library; inputs are clamped to [−87.3, 88.3] (fastExp in Tensor/Ops.swift),
// where fp32 e^x is normal, so e^(−∞) gives ≈ 1e-38 instead of 0 (harmless in a softmax without masking).
import Dispatch
import Tensor
import _CKernels

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
    let s = expInPlaceAndSum(row, count, minus: rowMax(row, count))
    let inv = 1 / s
    for j in 0..<count { row[j] *= inv }
}

/// x[r, j] = gelu_tanh(x[r, j] + bias[j]) for a (rows, cols) block, in place.
@inline(__always)
public func biasGeluRows(_ x: UnsafeMutablePointer<Float>, rows: Range<Int>, cols: Int, bias: UnsafePointer<Float>) {
    for r in rows {
        let row = x + r * cols
        eaglet_bias_gelu_tanh(row, bias, cols) // fastGelu(row[j] + bias[j]), 16 or 8 lanes wide
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
