// A weight matrix quantized to q8_0 at load: each row cut into blocks of 32, each block 32 int8 values q_i and one
// fp16 scale d with w_i ≈ d·q_i, d = max|w|/127 — llama.cpp's blocks and rule (34 bytes per 32 weights, 8.5 bits a
// weight, against BF16's 16), repacked in groups of 8 blocks (8 scales, then 8 × 32 values) so the kernel loads a
// group's scales with one instruction, as llama.cpp's own x86 repacking does; `block(r, b)` gathers one back. Decode's gemv quantizes the activation the same way (fp32 scale) and sums each
// block's 32 products exactly in int32 (`eaglet_gemv_q8_0`: AVX-512 VNNI, AVX2 or plain C chosen at run time);
// prefill widens row panels into a reused fp32 buffer ahead of sgemm, as for BF16.
// The error is that of rounding to 255 levels per block: |w − d·q| ≤ d/2 = max|w|/254 (docs/spec.md §7.3).
// What it is not: a file format (nothing is written back), or any of llama.cpp's other quantizations.
import Dispatch
import _CKernels

/// (rows, cols) weights as q8_0 blocks, row-major: row r is bytes r·cols/32·34 ..< (r + 1)·cols/32·34, its blocks
/// in groups of 8 (ckernels.h). cols % 32 == 0.
// @unchecked: the bytes are written once, in init, then only read; `storage` keeps them alive.
public struct Q8Matrix: @unchecked Sendable {
    public let rows: Int, cols: Int
    public let bytes: UnsafePointer<UInt8>
    let storage: ByteBox

    /// Bytes per block: a 2-byte fp16 scale and 32 int8 values.
    public static let blockBytes = 34
    /// Values per block.
    public static let blockSize = 32

    /// Whether a (rows, cols) matrix can be held as q8_0 (cols a multiple of 32).
    public static func fits(cols: Int) -> Bool { cols > 0 && cols % blockSize == 0 }

    /// Quantizes the rows `rows(r0..<r1, into:)` hands out as fp32, a panel at a time, over `threads` threads.
    /// `widen(range, buffer)` writes (range.count × cols) floats.
    public init(
        rows: Int, cols: Int, threads: Int = 1,
        widening widen: @Sendable (Range<Int>, UnsafeMutablePointer<Float>) -> Void
    ) {
        precondition(rows >= 0 && Q8Matrix.fits(cols: cols), "Q8Matrix: cols must be a positive multiple of 32")
        self.rows = rows; self.cols = cols
        let rowBytes = cols / Q8Matrix.blockSize * Q8Matrix.blockBytes
        storage = ByteBox(count: rows * rowBytes)
        bytes = UnsafePointer(storage.pointer)
        nonisolated(unsafe) let out = storage.pointer // each part writes only its own rows' bytes
        let panel = 64
        let parts = max(1, min(threads, (rows + panel - 1) / panel))
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let lo = rows * p / parts, hi = rows * (p + 1) / parts
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: panel * cols)
            defer { buffer.deallocate() }
            var r = lo
            while r < hi {
                let n = min(panel, hi - r)
                widen(r..<(r + n), buffer)
                eaglet_quantize_q8_0(buffer, n, cols, out + r * rowBytes)
                r += n
            }
        }
    }

    /// An fp32 tensor quantized (for tests, benchmarks and f32 checkpoints).
    public init(quantizing t: Tensor, threads: Int = 1) {
        precondition(t.rank == 2, "Q8Matrix: need a (rows, cols) tensor, got \(t.shape)")
        let cols = t.shape[1]
        let source = t
        self.init(rows: t.shape[0], cols: cols, threads: threads) { r, out in
            source.storage.withUnsafeBufferPointer {
                out.update(from: $0.baseAddress! + r.lowerBound * cols, count: r.count * cols)
            }
        }
    }

    /// A BF16 matrix quantized, widening a panel of rows at a time (the BF16 pages are read once).
    public init(quantizing m: BF16Matrix, threads: Int = 1) {
        self.init(rows: m.rows, cols: m.cols, threads: threads) { r, out in m.widenRows(r, into: out) }
    }

    public var shape: [Int] { [rows, cols] }
    /// Bytes held: 34 per 32 weights.
    public var byteCount: Int { rows * cols / Q8Matrix.blockSize * Q8Matrix.blockBytes }

    /// The fp32 tensor d·q (the quantized weights, not the original ones).
    public func widened() -> Tensor {
        Tensor(shape: [rows, cols], overwrittenBy: { eaglet_q8_0_to_f32(bytes, cols, 0, rows, $0.baseAddress!) })
    }

    /// Rows r0 ..< r1 dequantized into `into` (row-major, (r1 − r0)·cols floats).
    public func widenRows(_ r: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        eaglet_q8_0_to_f32(bytes, cols, r.lowerBound, r.count, out)
    }

    /// Block `b` of row `r` as llama.cpp stores it: the fp16 scale (little-endian), then the 32 int8 values.
    public func block(_ r: Int, _ b: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Q8Matrix.blockBytes)
        out.withUnsafeMutableBufferPointer { eaglet_q8_0_block(bytes, cols, r, b, $0.baseAddress!) }
        return out
    }
}

/// An owned, stable byte buffer.
final class ByteBox: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UInt8>
    init(count: Int) { pointer = .allocate(capacity: max(count, 1)) }
    deinit { pointer.deallocate() }
}

/// An activation row quantized for `eaglet_gemv_q8_0`: `q` (C int8) and one fp32 scale per 32 values (`d`).
public struct Q8Activation {
    public var q: [Int8]
    public var d: [Float]

    /// x (C values, C % 32 == 0) quantized with q8_0's rule, the scale kept in fp32.
    public init(_ x: UnsafePointer<Float>, count: Int) {
        precondition(Q8Matrix.fits(cols: count), "Q8Activation: width \(count) is not a positive multiple of 32")
        // d padded with zeros to a multiple of 8 scales: the kernels load a group's 8 at once.
        let nb = count / Q8Matrix.blockSize
        var q = [Int8](repeating: 0, count: count)
        var d = [Float](repeating: 0, count: (nb + 7) / 8 * 8)
        q.withUnsafeMutableBufferPointer { Q in
            d.withUnsafeMutableBufferPointer { D in eaglet_quantize_row_q8(x, count, Q.baseAddress!, D.baseAddress!) }
        }
        self.q = q; self.d = d
    }
}

/// The reference twin of `eaglet_gemv_q8_0`: y[r] = Σ_b (d_w·d_x) · Σ_i q_w·q_x, block sums in Int, in order, each
/// block read back in llama.cpp's form.
public func gemvQ8Reference(_ w: Q8Matrix, _ x: Q8Activation) -> [Float] {
    let nb = w.cols / Q8Matrix.blockSize
    return (0..<w.rows).map { r in
        var s: Float = 0
        for b in 0..<nb {
            let block = w.block(r, b)
            var t = 0
            for i in 0..<32 { t += Int(Int8(bitPattern: block[2 + i])) * Int(x.q[32 * b + i]) }
            let d = eaglet_f16_to_f32(UInt16(block[0]) | UInt16(block[1]) << 8)
            s += Float(t) * (d * x.d[b])
        }
        return s
    }
}

extension Q8Activation {
    /// Calls `body` with the quantized values and the scales, valid for the call.
    public func withPointers<R>(_ body: (UnsafePointer<Int8>, UnsafePointer<Float>) -> R) -> R {
        q.withUnsafeBufferPointer { Q in d.withUnsafeBufferPointer { D in body(Q.baseAddress!, D.baseAddress!) } }
    }
}
