// The one switch between the readable reference code and the fast code, passed the same way everywhere.
//
// What it is: every module keeps a plain `reference` path (the triple-loop matmul, full (T, S) attention
// scores, the literal view/permute pixel shuffle, …) and a `fast` path beside it (sgemm, blockwise
// attention, the row-split prefill, …). Which one runs is a `Compute` value handed down from the caller,
// with the number of threads the fast path may use, instead of a flag or a process-wide setting
// read somewhere inside. `.reference` runs on one thread; `.fast` uses `threads` (BLAS threads, or
// Eaglet's own workers with OpenBLAS held to one thread where a module splits the work itself).
// What it is not: a device choice (the GPU mirror takes the same value for its kernels, not for placement).

/// Which implementation a call runs, and with how many threads.
public struct Compute: Sendable, Hashable, CustomStringConvertible {
    public enum Path: String, Sendable, CaseIterable {
        /// The readable code every fast path is tested against.
        case reference
        /// sgemm/gemv, blockwise attention, threaded modules.
        case fast
    }

    /// How decode's one-token products read the weights on the fast path.
    public enum Gemv: String, Sendable, CaseIterable {
        /// Eaglet's `gemvRows`: rows streamed once, split over the threads.
        case rows
        /// OpenBLAS `cblas_sgemv` (kept for the benchmark's comparison).
        case blas
    }

    public var path: Path
    /// Threads the fast path may use (≥ 1). The reference path uses one.
    public var threads: Int
    /// The decode gemv (fast path only).
    public var gemv: Gemv

    public init(path: Path, threads: Int, gemv: Gemv = .rows) {
        precondition(threads >= 1, "Compute: threads must be ≥ 1, got \(threads)")
        self.path = path
        self.threads = path == .reference ? 1 : threads
        self.gemv = gemv
    }

    /// The readable path, one thread.
    public static let reference = Compute(path: .reference, threads: 1)
    /// The fast path on `threads` threads.
    public static func fast(threads: Int) -> Compute { Compute(path: .fast, threads: threads) }
    /// The fast path on the threads OpenBLAS was started with (`OPENBLAS_NUM_THREADS` or the core count),
    /// read once per process.
    public static var fast: Compute { Compute(path: .fast, threads: BLAS.defaultThreads) }

    public var isReference: Bool { path == .reference }

    /// The same path with another thread count (one for the reference path).
    public func with(threads n: Int) -> Compute { Compute(path: path, threads: n, gemv: gemv) }

    public var description: String {
        path == .reference ? "reference" : "fast(threads: \(threads)\(gemv == .blas ? ", gemv: blas" : ""))"
    }
}
