// A weight matrix kept in its stored dtype, BF16, read in place from memory another object owns (the mapped
// checkpoint), so a 16 GB BF16 checkpoint costs 16 GB of (reclaimable, file-backed) pages instead of 33 GB of
// widened fp32. The products read it directly: decode's gemv widens in registers (`eaglet_gemv_bf16`, AVX-512,
// AVX2 or plain C chosen at run time), prefill widens panels into a reused fp32 buffer ahead of sgemm.
// BF16 → fp32 is exact (the BF16 bits are the top half of the fp32's), so results differ from the widened
// weights' only in the order products are summed.
// What it is not: writable, or F16 (F16 weights are still widened at load).
import _CKernels

/// (rows, cols) BF16 values, row-major, borrowed from `owner`.
// @unchecked: the bits are read-only (a PROT_READ mapping or an array this value keeps) and `owner`, which keeps
// them alive, is never touched after init.
public struct BF16Matrix: @unchecked Sendable {
    public let rows: Int, cols: Int
    public let bits: UnsafePointer<UInt16>
    let owner: AnyObject

    /// `bits` must hold rows·cols values and stay valid while `owner` lives.
    public init(rows: Int, cols: Int, bits: UnsafePointer<UInt16>, owner: AnyObject) {
        precondition(rows >= 0 && cols >= 0, "BF16Matrix: negative shape (\(rows), \(cols))")
        self.rows = rows; self.cols = cols; self.bits = bits; self.owner = owner
    }

    /// An fp32 tensor narrowed to BF16 (round to nearest even), owned by the result; for tests and benchmarks.
    public init(narrowing t: Tensor) {
        precondition(t.rank == 2, "BF16Matrix: need a (rows, cols) tensor, got \(t.shape)")
        let box = BitsBox(t.storage.map(floatToBF16))
        self.init(rows: t.shape[0], cols: t.shape[1], bits: box.pointer, owner: box)
    }

    public var shape: [Int] { [rows, cols] }

    /// The fp32 tensor (exact).
    public func widened() -> Tensor {
        Tensor(shape: [rows, cols], overwrittenBy: { eaglet_bf16_to_f32(bits, $0.baseAddress!, rows * cols) })
    }

    /// Rows r0 ..< r1 widened into `into` (row-major, (r1 − r0)·cols floats).
    public func widenRows(_ r: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        eaglet_bf16_to_f32(bits + r.lowerBound * cols, out, r.count * cols)
    }
}

/// An owned array of BF16 bits with a stable address.
final class BitsBox {
    let pointer: UnsafeMutablePointer<UInt16>
    init(_ values: [UInt16]) {
        pointer = .allocate(capacity: max(values.count, 1))
        pointer.initialize(from: values, count: values.count)
    }
    deinit { pointer.deallocate() }
}

/// Which vector path the BF16 kernels use on this CPU ("avx512", "avx2", "plain").
public enum KernelPath {
    /// The paths' names, indexed by the C kernels' path number.
    static let names = ["plain", "avx2", "avx512"]
    public static var current: String { names[Int(eaglet_kernel_path())] }
    /// Forces a path no better than the CPU's (tests check each one on one machine); returns the one in use.
    @discardableResult
    public static func use(_ name: String) -> String {
        names[Int(eaglet_use_kernel_path(Int32(names.firstIndex(of: name) ?? names.count - 1)))]
    }
}
