// Writing a safetensors file without holding it: the header first (every tensor's name, dtype and shape is
// known up front, so every offset is too), then each tensor's bytes appended in header order, in as many
// pieces as the caller likes. What `eaglet synth` uses to write a 16 GB checkpoint in a few MB of memory.
//
// Layout: the same as `SafeTensorsWriter` (8-byte header length, JSON padded with spaces to a multiple of 8,
// tensors contiguous and little-endian in order). The file is written under a temporary name and renamed when
// the last byte of the last tensor is in, so a file under the final name is always complete.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One tensor of a header: name, stored dtype and shape.
public struct SafeTensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public init(_ name: String, _ dtype: DType, _ shape: [Int]) {
        self.name = name; self.dtype = dtype; self.shape = shape
    }
    /// Bytes of the tensor's data.
    public var byteCount: Int { shape.reduce(1, *) * dtype.size }
}

/// The header bytes of a safetensors file holding `entries` in order: the 8-byte little-endian length, then the
/// JSON (`__metadata__` first when not empty), padded with spaces to a multiple of 8.
public func safeTensorsHeader(_ entries: [SafeTensorsEntry], metadata: [String: String] = [:]) -> [UInt8] {
    var parts = [String]()
    if !metadata.isEmpty {
        let m = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
        parts.append("\"__metadata__\":{\(m.joined(separator: ","))}")
    }
    var offset = 0
    for e in entries {
        let shape = e.shape.map(String.init).joined(separator: ",")
        parts.append(
            "\(jsonString(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + e.byteCount)]}"
        )
        offset += e.byteCount
    }
    var h = Array(("{" + parts.joined(separator: ",") + "}").utf8)
    while h.count % 8 != 0 { h.append(0x20) }
    var out = [UInt8]()
    out.reserveCapacity(8 + h.count)
    var n = UInt64(h.count).littleEndian
    withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
    return out + h
}

/// Writes one safetensors file whose header is known up front; tensor bytes are appended in header order.
public final class SafeTensorsStreamWriter {
    public let path: String
    public let entries: [SafeTensorsEntry]
    private let temporaryPath: String
    private var file: UnsafeMutablePointer<FILE>?
    /// Index of the tensor being written and bytes of it written so far.
    private var current = 0
    private var writtenOfCurrent = 0
    /// Bytes of the whole file (header included) once finished.
    public let fileSize: Int

    /// Creates the file (under a temporary name beside `path`) and writes its header.
    public init(path: String, entries: [SafeTensorsEntry], metadata: [String: String] = [:]) throws {
        self.path = path
        self.entries = entries
        temporaryPath = path + ".partial"
        let header = safeTensorsHeader(entries, metadata: metadata)
        fileSize = header.count + entries.reduce(0) { $0 + $1.byteCount }
        guard let f = fopen(temporaryPath, "wb") else {
            throw SafeTensorsError.cannotOpen(file: temporaryPath, reason: String(cString: strerror(errno)))
        }
        file = f
        try write(header)
        skipEmpty()
    }

    deinit {
        if let file { fclose(file); unlink(temporaryPath) }
    }

    /// The tensor the next bytes belong to, or nil when every tensor is complete.
    public var nextTensor: SafeTensorsEntry? { current < entries.count ? entries[current] : nil }

    private func skipEmpty() {
        while current < entries.count && writtenOfCurrent == entries[current].byteCount {
            current += 1; writtenOfCurrent = 0
        }
    }

    private func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0, let base = bytes.baseAddress else { return }
        guard fwrite(base, 1, bytes.count, file) == bytes.count else {
            throw SafeTensorsError.cannotOpen(
                file: temporaryPath, reason: "cannot write: \(String(cString: strerror(errno)))")
        }
    }

    private func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Appends raw little-endian bytes of the current tensor; they may not run past its end.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard let e = nextTensor else {
            preconditionFailure("SafeTensorsStreamWriter: every tensor of \(path) is already written")
        }
        precondition(
            writtenOfCurrent + bytes.count <= e.byteCount,
            "SafeTensorsStreamWriter: \(bytes.count) more bytes run past the end of '\(e.name)'")
        try write(bytes)
        writtenOfCurrent += bytes.count
        skipEmpty()
    }

    /// Appends Float32 values of the current tensor, stored as its dtype (F32, BF16 or F16; narrowing rounds to
    /// nearest even).
    public func append(floats: UnsafeBufferPointer<Float>) throws {
        guard let e = nextTensor else {
            preconditionFailure("SafeTensorsStreamWriter: every tensor of \(path) is already written")
        }
        switch e.dtype {
        case .f32:
            try append(UnsafeRawBufferPointer(floats))
        case .bf16, .f16:
            var bits = [UInt16](repeating: 0, count: floats.count)
            if e.dtype == .bf16 {
                for i in 0..<floats.count { bits[i] = floatToBF16(floats[i]).littleEndian }
            } else {
                for i in 0..<floats.count { bits[i] = floatToF16(floats[i]).littleEndian }
            }
            try bits.withUnsafeBytes { try append($0) }
        default:
            preconditionFailure("SafeTensorsStreamWriter: '\(e.name)' is \(e.dtype.rawValue), not a float dtype")
        }
    }

    /// Appends Float32 values of the current tensor (see `append(floats:)`).
    public func append(floats: [Float]) throws { try floats.withUnsafeBufferPointer { try append(floats: $0) } }

    /// Checks every tensor is complete, closes the file and gives it its final name.
    public func finish() throws {
        precondition(
            nextTensor == nil,
            "SafeTensorsStreamWriter: '\(nextTensor?.name ?? "")' of \(path) is incomplete (\(writtenOfCurrent) bytes)")
        guard let f = file else { return }
        file = nil
        guard fclose(f) == 0 else {
            unlink(temporaryPath)
            throw SafeTensorsError.cannotOpen(
                file: temporaryPath, reason: "cannot close: \(String(cString: strerror(errno)))")
        }
        guard rename(temporaryPath, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw SafeTensorsError.cannotOpen(file: path, reason: "cannot rename into place: \(reason)")
        }
    }
}
