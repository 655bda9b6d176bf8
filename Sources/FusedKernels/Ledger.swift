// The memory ledger of the kernel lab: every intermediate buffer a FusedKernels kernel needs (naive or
// fused) is a `Scratch`, and every Scratch is counted here while it lives. So "extra memory" of a kernel
// is measured, not estimated: `MemoryLedger.current.measure { … }` returns the highest number of scratch
// bytes alive at once during the call. One ledger per thread (the kernels are single-threaded apart from
// OpenBLAS), so tests running side by side do not see each other's buffers.
//
// What it counts: the bytes beyond the inputs, the weights and the outputs (gradients included) — the
// figure the "≤ 10 % of naive" target is about. What it does not count: the outputs themselves
// (returned as `Tensor`s), OpenBLAS's internal packing buffers, Swift runtime overhead. eaglet-bench
// reports the process's peak RSS (VmHWM) beside it, so both the narrow and the whole-process figure are
// visible.
import Foundation
import _CBLAS
import Tensor

/// Live and peak scratch bytes of one thread.
// @unchecked: `live` and `high` are only read and written with `lock` held.
public final class MemoryLedger: @unchecked Sendable {
    /// This thread's ledger, the one every `Scratch` created on this thread reports to.
    public static var current: MemoryLedger {
        let key = "eaglet.FusedKernels.MemoryLedger"
        if let l = Thread.current.threadDictionary[key] as? MemoryLedger { return l }
        let l = MemoryLedger()
        Thread.current.threadDictionary[key] = l
        return l
    }
    private let lock = NSLock()
    private var live = 0
    private var high = 0

    /// Bytes of scratch alive now.
    public var currentBytes: Int { lock.lock(); defer { lock.unlock() }; return live }
    /// Highest `currentBytes` since the last `resetPeak`.
    public var peakBytes: Int { lock.lock(); defer { lock.unlock() }; return high }
    /// Starts a new peak measurement from what is alive now.
    public func resetPeak() { lock.lock(); high = live; lock.unlock() }

    func take(_ bytes: Int) { lock.lock(); live += bytes; high = max(high, live); lock.unlock() }
    func give(_ bytes: Int) { lock.lock(); live -= bytes; lock.unlock() }

    /// Runs `body` and returns its result with the peak scratch bytes it added above what was alive before.
    public func measure<R>(_ body: () throws -> R) rethrows -> (result: R, peakBytes: Int) {
        resetPeak()
        let base = currentBytes
        let r = try body()
        return (r, peakBytes - base)
    }
}

/// A counted Float32 buffer that frees itself (and tells the ledger) when the last reference goes.
public final class Scratch {
    public let count: Int
    public let p: UnsafeMutablePointer<Float>
    private let ledger: MemoryLedger

    /// `count` floats, zero-filled unless `zeroed` is false.
    public init(_ count: Int, zeroed: Bool = true) {
        self.count = count
        p = .allocate(capacity: max(count, 1))
        if zeroed { p.initialize(repeating: 0, count: max(count, 1)) }
        ledger = MemoryLedger.current
        ledger.take(count * MemoryLayout<Float>.stride)
    }
    deinit {
        p.deallocate()
        ledger.give(count * MemoryLayout<Float>.stride)
    }

    public subscript(i: Int) -> Float {
        get { p[i] }
        set { p[i] = newValue }
    }

    /// A copy as a Tensor of `shape` (for tests and chapters).
    public func tensor(_ shape: [Int]) -> Tensor {
        precondition(Tensor.elementCount(shape) == count, "Scratch.tensor: \(shape) vs \(count) floats")
        return Tensor(shape: shape, storage: Array(UnsafeBufferPointer(start: p, count: count)))
    }
}

/// Row-major sgemm on raw pointers: C (M, N) = alpha · op(A) · op(B) + beta · C.
@inline(__always)
func gemm(
    _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
) {
    guard m > 0, n > 0 else { return }
    if k == 0 {
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    cblas_sgemm(
        CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Calls `body` with read pointers to `a`'s elements.
@inline(__always)
func withPtr<R>(_ a: Tensor, _ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
    try a.storage.withUnsafeBufferPointer { try body($0.baseAddress!) }
}

/// A fresh zero tensor and a mutable pointer to it, filled by `body`.
@inline(__always)
func makeTensor(_ shape: [Int], _ body: (UnsafeMutablePointer<Float>) throws -> Void) rethrows -> Tensor {
    var s = [Float](repeating: 0, count: max(Tensor.elementCount(shape), 1))
    try s.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    if Tensor.elementCount(shape) == 0 { s = [] }
    return Tensor(shape: shape, storage: s)
}
