// Matrix multiplication: the whole game.
//
// A transformer spends almost all of its arithmetic in matmuls (every Linear layer, q·kᵀ, p·v), so the
// speed of this file is the speed of Eaglet. Two versions sit side by side:
//   * `matmulNaive`: the textbook triple loop, i-k-j order so the inner loop streams along rows.
//     Obviously correct; roughly 1–3 GFLOP/s.
//   * `matmul`: the same contraction handed to OpenBLAS `cblas_sgemm`, which blocks for caches and
//     registers and uses every SIMD lane; ~100+ GFLOP/s a core. Tested against the naive one on odd shapes.
// `linear` is PyTorch's `F.linear`: y = x·Wᵀ + b with W stored (out, in), as every checkpoint stores it.
import _CBLAS
import _CKernels
#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Thin, typed wrappers over the BLAS calls Eaglet uses, so other modules need not import C.
public enum BLAS {
    /// Sets the number of OpenBLAS threads for this process.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
    /// The number of OpenBLAS threads in use.
    public static var threads: Int { Int(openblas_get_num_threads()) }
    /// The thread count OpenBLAS chose at start-up (`OPENBLAS_NUM_THREADS` or the core count), read on first use,
    /// before anything in Eaglet changes it: the default of `Compute.fast`.
    public static let defaultThreads: Int = max(1, Int(openblas_get_num_threads()))
    /// Makes the OpenBLAS calls that follow use `n` threads. The setting is process-wide, so every fast path sets
    /// the count it was handed (`Compute.threads`, or 1 inside workers that split the work themselves) before its
    /// products instead of relying on what an earlier call left; it is written only when it differs.
    public static func use(threads n: Int) {
        if Int(openblas_get_num_threads()) != n { openblas_set_num_threads(Int32(max(1, n))) }
    }
    /// The OPENBLAS_CORETYPE this process should restart with, or nil. Debian 12's OpenBLAS 0.3.21 does not know
    /// some recent CPUs (Intel Xeon family 6 model 207 among them) and falls back to its SSE3 "Prescott" kernels, a
    /// third of the speed; when it did, no OPENBLAS_CORETYPE was set, and the CPU has AVX-512 (or AVX2 + FMA), the
    /// answer is "SkylakeX" (or "Haswell"). OpenBLAS reads the variable only as it loads, hence the restart
    /// (`restartIfOpenBLASMisdetected` in the executables).
    public static func betterCoreType() -> String? {
        guard getenv("OPENBLAS_CORETYPE") == nil else { return nil }
        let generic: Set = [
            "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai", "coppermine",
            "northwood", "banias", "unknown"
        ]
        guard generic.contains(coreName.lowercased()) else { return nil }
        switch eaglet_cpu_level() {
        case 2: return "SkylakeX"
        case 1: return "Haswell"
        default: return nil
        }
    }

    /// Replaces this process by itself with OPENBLAS_CORETYPE set when `betterCoreType()` names one (same arguments,
    /// same pid); returns when there is nothing to do or the exec fails. Executables call it first thing in main.
    public static func restartIfMisdetected() {
        guard let core = betterCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }

    /// The kernel family OpenBLAS picked for this CPU (e.g. "Haswell", "SkylakeX").
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// C(M×N) = alpha · op(A) · op(B) + beta · C, row-major, op = identity or transpose.
    ///
    /// `lda`, `ldb`, `ldc` are the row strides (in elements) of A, B, C as stored.
    @inlinable
    public static func sgemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor,
            transA ? CblasTrans : CblasNoTrans,
            transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha,
            a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// Checks shapes of a (M, K) × b (K, N) or, with `transposeB`, a (M, K) × b(N, K)ᵀ; returns (M, K, N).
@usableFromInline
func matmulShapes(_ a: Tensor, _ b: Tensor, transposeB: Bool) -> (Int, Int, Int) {
    precondition(a.rank == 2 && b.rank == 2, "matmul: need 2-D tensors, got \(a.shape) and \(b.shape)")
    let m = a.shape[0], k = a.shape[1]
    let (kb, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
    precondition(k == kb, "matmul: inner dimensions differ, \(a.shape) × \(b.shape)\(transposeB ? "ᵀ" : "")")
    return (m, k, n)
}

/// Textbook matmul: out[i, j] = Σ_k a[i, k] · b[k, j]. Shapes: a (M, K), b (K, N) → (M, N);
/// with `transposeB`, b is (N, K) and the product is a·bᵀ.
///
/// `threads > 1` hands blocks of rows to that many threads; each element is summed in the same order,
/// so the result is identical to the single-threaded one (used by the benchmark's 2-thread row).
public func matmulNaive(_ a: Tensor, _ b: Tensor, transposeB: Bool = false, threads: Int = 1) -> Tensor {
    let (m, k, n) = matmulShapes(a, b, transposeB: transposeB)
    var out = [Float](repeating: 0, count: m * n)
    a.storage.withUnsafeBufferPointer { A in
        b.storage.withUnsafeBufferPointer { B in
            out.withUnsafeMutableBufferPointer { C in
                let Ap = A.baseAddress, Bp = B.baseAddress, Cp = C.baseAddress
                func rows(_ r: Range<Int>) {
                    guard let Ap, let Bp, let Cp else { return }
                    if transposeB {
                        for i in r {
                            for j in 0..<n {
                                var acc: Float = 0
                                for p in 0..<k { acc += Ap[i * k + p] * Bp[j * k + p] }
                                Cp[i * n + j] = acc
                            }
                        }
                    } else {
                        for i in r {
                            for p in 0..<k {
                                let aip = Ap[i * k + p]
                                for j in 0..<n { Cp[i * n + j] += aip * Bp[p * n + j] }
                            }
                        }
                    }
                }
                let parts = max(1, min(threads, m))
                if parts == 1 { rows(0..<m); return }
                // nonisolated(unsafe): each iteration writes only its own rows of C and only reads A and B.
                nonisolated(unsafe) let disjointRows = rows
                DispatchQueue.concurrentPerform(iterations: parts) { t in
                    disjointRows((t * m / parts)..<((t + 1) * m / parts))
                }
            }
        }
    }
    return Tensor(shape: [m, n], storage: out)
}

/// Fast matmul via `cblas_sgemm`. Same contract as `matmulNaive`.
public func matmul(_ a: Tensor, _ b: Tensor, transposeB: Bool = false) -> Tensor {
    let (m, k, n) = matmulShapes(a, b, transposeB: transposeB)
    var out = [Float](repeating: 0, count: m * n)
    if m > 0 && n > 0 && k > 0 {
        a.storage.withUnsafeBufferPointer { A in
            b.storage.withUnsafeBufferPointer { B in
                out.withUnsafeMutableBufferPointer { C in
                    BLAS.sgemm(
                        transB: transposeB, m: m, n: n, k: k,
                        a: A.baseAddress!, lda: k,
                        b: B.baseAddress!, ldb: transposeB ? k : n,
                        c: C.baseAddress!, ldc: n)
                }
            }
        }
    }
    return Tensor(shape: [m, n], storage: out)
}

/// Batched matmul: a (B, M, K) × b (B, K, N) → (B, M, N); with `transposeB`, b is (B, N, K).
/// One sgemm per batch entry (`.reference`: the triple loop instead).
public func batchedMatmul(_ a: Tensor, _ b: Tensor, transposeB: Bool = false, compute: Compute = .fast) -> Tensor {
    precondition(
        a.rank == 3 && b.rank == 3 && a.shape[0] == b.shape[0],
        "batchedMatmul: need (B, M, K) and (B, K, N), got \(a.shape) and \(b.shape)")
    let batch = a.shape[0]
    var parts = [Tensor]()
    parts.reserveCapacity(batch)
    for i in 0..<batch {
        let ai = a.row(i), bi = b.row(i)
        parts.append(
            compute.isReference ? matmulNaive(ai, bi, transposeB: transposeB) : matmul(ai, bi, transposeB: transposeB))
    }
    let m = a.shape[1]
    let n = transposeB ? b.shape[1] : b.shape[2]
    return Tensor(shape: [batch, m, n], storage: parts.flatMap(\.storage))
}

/// PyTorch `F.linear`: y = x · Wᵀ + b. Shapes: x (T, C_in), weight (C_out, C_in), bias (C_out) → (T, C_out).
/// `x` may have any leading shape; it is flattened to rows and restored. `.reference`: the triple loop.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, compute: Compute = .fast) -> Tensor {
    let cin = x.shape.last ?? 1
    precondition(
        weight.rank == 2 && weight.shape[1] == cin,
        "linear: weight \(weight.shape) does not take inputs of width \(cin)")
    let rows = x.reshaped([x.count / max(cin, 1), cin])
    var y = compute.isReference ? matmulNaive(rows, weight, transposeB: true) : matmul(rows, weight, transposeB: true)
    if let bias {
        let cout = weight.shape[0]
        precondition(bias.count == cout, "linear: bias \(bias.shape) does not match \(cout) outputs")
        y.storage.withUnsafeMutableBufferPointer { Y in
            bias.storage.withUnsafeBufferPointer { Bv in
                for r in 0..<(Y.count / max(cout, 1)) {
                    for j in 0..<cout { Y[r * cout + j] += Bv[j] }
                }
            }
        }
    }
    var outShape = x.shape
    outShape[outShape.count - 1] = weight.shape[0]
    return y.reshaped(outShape)
}
