// Writing safetensors: what the CLI's `--dump` and the benchmarks use.
//
// Layout written: the 8-byte header length, the JSON header padded with spaces to a multiple of 8
// bytes (as the reference writer does, so the data section is 8-byte aligned), then the tensors in the
// order they were added, each contiguous and little-endian.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
#if canImport(Glibc)
import Glibc
#endif

/// Collects tensors and writes one safetensors file.
public struct SafeTensorsWriter {
    private var entries: [(name: String, dtype: DType, shape: [Int], bytes: [UInt8])] = []
    public var metadata: [String: String] = [:]

    public init() {}

    /// Adds a Float32 tensor, stored as `dtype` (F32, F16 or BF16; narrowing rounds to nearest even).
    public mutating func add(_ name: String, _ t: Tensor, as dtype: DType = .f32) {
        precondition(
            [.f32, .f16, .bf16].contains(dtype), "SafeTensorsWriter: Float tensors are stored as F32, F16 or BF16")
        var bytes = [UInt8]()
        bytes.reserveCapacity(t.count * dtype.size)
        for x in t.storage {
            switch dtype {
            case .f32: appendLE(&bytes, x.bitPattern)
            case .bf16: appendLE(&bytes, floatToBF16(x))
            default: appendLE(&bytes, floatToF16(x))
            }
        }
        entries.append((name, dtype, t.shape, bytes))
    }

    /// Adds an integer tensor stored as I64 (or I32).
    public mutating func add(_ name: String, integers values: [Int64], shape: [Int], as dtype: DType = .i64) {
        precondition(dtype == .i64 || dtype == .i32, "SafeTensorsWriter: integers are stored as I64 or I32")
        precondition(
            shape.reduce(1, *) == values.count,
            "SafeTensorsWriter: shape \(shape) does not match \(values.count) values")
        var bytes = [UInt8]()
        for v in values {
            if dtype == .i64 {
                appendLE(&bytes, UInt64(bitPattern: v))
            } else {
                appendLE(&bytes, UInt32(bitPattern: Int32(truncatingIfNeeded: v)))
            }
        }
        entries.append((name, dtype, shape, bytes))
    }

    /// The complete file as bytes.
    public func serialized() -> [UInt8] {
        var out = safeTensorsHeader(entries.map { SafeTensorsEntry($0.name, $0.dtype, $0.shape) }, metadata: metadata)
        out.reserveCapacity(out.count + entries.reduce(0) { $0 + $1.bytes.count })
        for e in entries { out += e.bytes }
        return out
    }

    /// Writes the file atomically (to a temporary name, then renamed).
    public func write(to path: String) throws {
        let data = Data(serialized())
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw SafeTensorsError.cannotOpen(file: path, reason: "cannot write: \(error)")
        }
    }
}

@inline(__always)
private func appendLE<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
    var x = v.littleEndian
    withUnsafeBytes(of: &x) { out.append(contentsOf: $0) }
}

/// A JSON string literal for `s` (quotes, backslashes and control characters escaped).
public func jsonString(_ s: String) -> String { JSON.quoted(s) }
