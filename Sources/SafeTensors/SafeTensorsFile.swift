// Reading safetensors: one memory-mapped file, validated header, typed access.
//
// Format (huggingface/safetensors): 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON, then the
// data section. The JSON maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} with
// offsets relative to the data section; an optional "__metadata__" maps strings to strings.
// The file is mapped read-only, so a 16 GB checkpoint costs address space, not memory: tensors are read
// (and widened to Float32) only when asked for.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
@_exported import Tensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a tensor lives in a file: dtype, shape and the byte range inside the data section.
public struct TensorInfo: Equatable, Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let dataRange: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A read-only memory mapping that is unmapped when the last reference goes away.
// @unchecked: a read-only (PROT_READ) mapping, owned by this object and unmapped only in deinit;
// `base` is never written.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer?
    let size: Int

    init(path: String) throws {
        let fd: Int32
        do { (fd, size) = try openRegularFile(path) } catch let p as FileReadProblem {
            switch p {
            case .missing: throw SafeTensorsError.cannotOpen(file: path, reason: String(cString: strerror(ENOENT)))
            case .notRegular: throw SafeTensorsError.cannotOpen(file: path, reason: "not a regular file")
            case let .unreadable(why): throw SafeTensorsError.cannotOpen(file: path, reason: why)
            case .tooLarge: throw SafeTensorsError.cannotOpen(file: path, reason: "\(p)") // no limit is asked here
            }
        }
        defer { close(fd) }
        if size == 0 { base = nil; return }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw SafeTensorsError.cannotOpen(file: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        _ = madvise(p, size, Int32(MADV_HUGEPAGE))
        base = UnsafeRawPointer(p)
    }

    deinit { if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) } }
}

/// One safetensors file, mapped and validated.
public final class SafeTensorsFile: Sendable {
    /// Largest header accepted (the reference implementation uses the same 100 MB bound).
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    /// Tensor entries in data-section order.
    public let tensors: [TensorInfo]
    /// The optional `__metadata__` object.
    public let metadata: [String: String]
    private let byName: [String: Int]
    private let file: MappedFile
    private let dataStart: Int

    /// Maps `path` and validates its header. Throws `SafeTensorsError` naming the file and tensor.
    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        guard file.size >= 8, let base = file.base else {
            throw SafeTensorsError.truncated(file: path, size: file.size)
        }
        let n = base.loadUnaligned(as: UInt64.self).littleEndian
        guard n <= UInt64(SafeTensorsFile.maxHeaderBytes) else {
            throw SafeTensorsError.headerTooLarge(file: path, length: n, limit: SafeTensorsFile.maxHeaderBytes)
        }
        guard n <= UInt64(file.size - 8) else {
            throw SafeTensorsError.headerBeyondFile(file: path, length: n, fileSize: file.size)
        }
        let headerLength = Int(n)
        dataStart = 8 + headerLength
        let headerData = Data(bytes: base + 8, count: headerLength)
        let parsed = try SafeTensorsFile.parseHeader(headerData, file: path, dataSize: file.size - dataStart)
        tensors = parsed.tensors
        metadata = parsed.metadata
        var map = [String: Int]()
        for (i, t) in tensors.enumerated() { map[t.name] = i }
        byName = map
    }

    /// Parses and validates a header; `dataSize` is the byte length of the data section.
    static func parseHeader(_ data: Data, file: String, dataSize: Int) throws -> (
        tensors: [TensorInfo], metadata: [String: String]
    ) {
        guard String(data: data, encoding: .utf8) != nil else {
            throw SafeTensorsError.headerNotUTF8JSON(file: file, reason: "invalid UTF-8")
        }
        let json: Any
        do { json = try JSON.parse(data) } catch {
            throw SafeTensorsError.headerNotUTF8JSON(file: file, reason: "malformed JSON")
        }
        guard let object = json as? [String: Any] else { throw SafeTensorsError.headerNotObject(file: file) }

        var metadata = [String: String]()
        var infos = [TensorInfo]()
        for (name, value) in object {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw SafeTensorsError.badEntry(
                        file: file, tensor: name, reason: "__metadata__ must be an object of strings")
                }
                for (k, v) in m {
                    guard let s = v as? String else {
                        throw SafeTensorsError.badEntry(
                            file: file, tensor: name, reason: "__metadata__['\(k)'] is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            infos.append(try parseEntry(name: name, value: value, file: file, dataSize: dataSize))
        }
        // Sort by position; a non-empty range that starts before the furthest end seen so far (of any
        // earlier non-empty range, not just the neighbour: an empty range may sit between) overlaps it.
        infos.sort {
            ($0.dataRange.lowerBound, $0.dataRange.upperBound, $0.name) < (
                $1.dataRange.lowerBound, $1.dataRange.upperBound, $1.name
            )
        }
        var furthest: TensorInfo? = nil
        for cur in infos where !cur.dataRange.isEmpty {
            if let prev = furthest, cur.dataRange.lowerBound < prev.dataRange.upperBound {
                throw SafeTensorsError.overlap(file: file, tensor: cur.name, other: prev.name)
            }
            if cur.dataRange.upperBound > (furthest?.dataRange.upperBound ?? -1) { furthest = cur }
        }
        return (infos, metadata)
    }

    /// Reads an integer that JSON holds exactly (no fractions, no overflow past 2⁵³).
    private static func exactInt(_ v: Any) -> Int? {
        if let i = v as? Int { return abs(i) < 9_000_000_000_000_000 ? i : nil }
        guard let d = v as? Double, d.isFinite, d.rounded() == d, abs(d) < 9.0e15 else { return nil }
        return Int(d)
    }

    private static func parseEntry(name: String, value: Any, file: String, dataSize: Int) throws -> TensorInfo {
        guard let entry = value as? [String: Any] else {
            throw SafeTensorsError.badEntry(file: file, tensor: name, reason: "entry is not an object")
        }
        guard let dtypeName = entry["dtype"] as? String else {
            throw SafeTensorsError.badEntry(file: file, tensor: name, reason: "missing or non-string 'dtype'")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw SafeTensorsError.unknownDType(file: file, tensor: name, dtype: dtypeName)
        }
        guard let shapeAny = entry["shape"] as? [Any] else {
            throw SafeTensorsError.badEntry(file: file, tensor: name, reason: "missing or non-array 'shape'")
        }
        var shape = [Int]()
        var elements = 1
        for s in shapeAny {
            guard let d = exactInt(s), d >= 0 else {
                throw SafeTensorsError.badEntry(
                    file: file, tensor: name,
                    reason: "shape \(shapeAny) has an entry that is not a non-negative integer")
            }
            let (p, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow, p <= Int(Int32.max) * 64 else {
                throw SafeTensorsError.badEntry(
                    file: file, tensor: name, reason: "shape \(shapeAny) has too many elements")
            }
            elements = p
            shape.append(d)
        }
        guard let offs = entry["data_offsets"] as? [Any], offs.count == 2,
            let begin = exactInt(offs[0]), let end = exactInt(offs[1])
        else {
            throw SafeTensorsError.badEntry(file: file, tensor: name, reason: "'data_offsets' must be two integers")
        }
        guard begin >= 0, end >= begin, end <= dataSize else {
            throw SafeTensorsError.offsetsOutOfRange(
                file: file, tensor: name, begin: begin, end: end, dataSize: dataSize)
        }
        let expected = elements * dtype.size
        guard expected == end - begin else {
            throw SafeTensorsError.sizeMismatch(
                file: file, tensor: name, shape: shape, dtype: dtypeName,
                expectedBytes: expected, actualBytes: end - begin)
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
    }

    /// Names of all tensors, sorted.
    public var names: [String] { tensors.map(\.name).sorted() }

    /// The entry for `name`, or nil.
    public func info(_ name: String) -> TensorInfo? { byName[name].map { tensors[$0] } }

    /// Raw bytes of `name`, valid while this file object lives.
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let info = info(name) else { throw SafeTensorsError.missingTensor(file: path, tensor: name) }
        guard let base = file.base else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(
            UnsafeRawBufferPointer(start: base + dataStart + info.dataRange.lowerBound, count: info.dataRange.count))
    }

    /// Gives the pages wholly inside tensor `name`'s bytes back to the kernel (`madvise(MADV_DONTNEED)`): once a
    /// tensor has been widened or quantized into memory of its own, its mapped pages need not count in the process's
    /// resident set. They stay in the page cache, and a later read of the tensor simply faults them in again.
    public func dropPages(_ name: String) {
        guard let info = info(name), let base = file.base else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) + dataStart + info.dataRange.lowerBound
        let lo = (start + page - 1) / page * page, hi = (start + info.dataRange.count) / page * page
        guard hi > lo, let p = UnsafeMutableRawPointer(bitPattern: lo) else { return }
        _ = madvise(p, hi - lo, Int32(MADV_DONTNEED))
    }

    /// The BF16 tensor `name` of rank 2 as a matrix read in place from the mapping (which the matrix keeps alive),
    /// or nil when it is another dtype or rank, or its bytes are not 2-byte aligned.
    public func bf16Matrix(_ name: String) -> BF16Matrix? {
        guard let info = info(name), info.dtype == .bf16, info.shape.count == 2, let base = file.base else {
            return nil
        }
        let start = base + dataStart + info.dataRange.lowerBound
        guard Int(bitPattern: start) % 2 == 0 else { return nil }
        return BF16Matrix(
            rows: info.shape[0], cols: info.shape[1], bits: start.assumingMemoryBound(to: UInt16.self),
            owner: file)
    }

    /// The tensor `name` widened to Float32 (F32, F16, BF16, F64 and integer dtypes convert exactly
    /// where Float32 can hold the value).
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = info(name) else { throw SafeTensorsError.missingTensor(file: path, tensor: name) }
        let values = try withRawBytes(name) { raw in decodeAsFloat(raw, dtype: info.dtype, count: info.elementCount) }
        return Tensor(shape: info.shape, storage: values)
    }

    /// An integer tensor (I64, I32, I16, I8, U8, BOOL) as Int64 values, with its shape.
    public func integers(_ name: String) throws -> (shape: [Int], values: [Int64]) {
        guard let info = info(name) else { throw SafeTensorsError.missingTensor(file: path, tensor: name) }
        guard !info.dtype.isFloatingPoint else {
            throw SafeTensorsError.wrongDType(
                file: path, tensor: name, dtype: info.dtype.rawValue, expected: "an integer dtype")
        }
        let values: [Int64] = try withRawBytes(name) { raw in
            (0..<info.elementCount).map { i in
                switch info.dtype {
                case .i64: return raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self).littleEndian
                case .i32: return Int64(raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self).littleEndian)
                case .i16: return Int64(raw.loadUnaligned(fromByteOffset: i * 2, as: Int16.self).littleEndian)
                case .i8: return Int64(raw.load(fromByteOffset: i, as: Int8.self))
                default: return Int64(raw.load(fromByteOffset: i, as: UInt8.self))
                }
            }
        }
        return (info.shape, values)
    }
}

/// Converts `count` little-endian elements of `dtype` to Float32.
func decodeAsFloat(_ raw: UnsafeRawBufferPointer, dtype: DType, count: Int) -> [Float] {
    var out = [Float](repeating: 0, count: count)
    out.withUnsafeMutableBufferPointer { o in
        switch dtype {
        case .f32:
            for i in 0..<count {
                o[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).littleEndian)
            }
        case .bf16:
            for i in 0..<count {
                o[i] = bf16ToFloat(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian)
            }
        case .f16:
            for i in 0..<count {
                o[i] = f16ToFloat(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian)
            }
        case .f64:
            for i in 0..<count {
                o[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self).littleEndian))
            }
        case .i64:
            for i in 0..<count { o[i] = Float(raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self).littleEndian) }
        case .i32:
            for i in 0..<count { o[i] = Float(raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self).littleEndian) }
        case .i16:
            for i in 0..<count { o[i] = Float(raw.loadUnaligned(fromByteOffset: i * 2, as: Int16.self).littleEndian) }
        case .i8:
            for i in 0..<count { o[i] = Float(raw.load(fromByteOffset: i, as: Int8.self)) }
        case .u8, .bool:
            for i in 0..<count { o[i] = Float(raw.load(fromByteOffset: i, as: UInt8.self)) }
        }
    }
    return out
}
