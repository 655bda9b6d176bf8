// Every way a safetensors file or a sharded index can be wrong, as a typed error naming the file and,
// where there is one, the tensor. A hostile file must never crash the process: each check below runs
// before the bytes it guards are touched.

/// Why a safetensors file, or a sharded checkpoint index, was rejected.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible, Sendable {
    case cannotOpen(file: String, reason: String)
    case truncated(file: String, size: Int)
    case headerTooLarge(file: String, length: UInt64, limit: Int)
    case headerBeyondFile(file: String, length: UInt64, fileSize: Int)
    case headerNotUTF8JSON(file: String, reason: String)
    case headerNotObject(file: String)
    case badEntry(file: String, tensor: String, reason: String)
    case unknownDType(file: String, tensor: String, dtype: String)
    case offsetsOutOfRange(file: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    case sizeMismatch(file: String, tensor: String, shape: [Int], dtype: String, expectedBytes: Int, actualBytes: Int)
    case overlap(file: String, tensor: String, other: String)
    case missingTensor(file: String, tensor: String)
    case wrongDType(file: String, tensor: String, dtype: String, expected: String)
    case badIndex(file: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(f, r): return "\(f): cannot open (\(r))"
        case let .truncated(f, s):
            return "\(f): truncated safetensors file (\(s) bytes; at least 8 are needed for the header length)"
        case let .headerTooLarge(f, l, lim):
            return
                "\(f): header length \(l) bytes exceeds the limit of \(lim) bytes; the file is corrupt or not safetensors"
        case let .headerBeyondFile(f, l, s):
            return
                "\(f): header length \(l) bytes runs past the end of the \(s)-byte file; the file is truncated or corrupt"
        case let .headerNotUTF8JSON(f, r): return "\(f): header is not valid UTF-8 JSON (\(r))"
        case let .headerNotObject(f): return "\(f): header JSON is not an object of tensor entries"
        case let .badEntry(f, t, r): return "\(f): tensor '\(t)': \(r)"
        case let .unknownDType(f, t, d):
            return
                "\(f): tensor '\(t)': unknown dtype '\(d)' (expected one of \(DType.allCases.map(\.rawValue).joined(separator: ", ")))"
        case let .offsetsOutOfRange(f, t, b, e, s):
            return "\(f): tensor '\(t)': data_offsets [\(b), \(e)] lie outside the \(s)-byte data section"
        case let .sizeMismatch(f, t, sh, d, eb, ab):
            return "\(f): tensor '\(t)': shape \(sh) of \(d) needs \(eb) bytes but data_offsets span \(ab)"
        case let .overlap(f, t, o): return "\(f): tensor '\(t)' overlaps tensor '\(o)' in the data section"
        case let .missingTensor(f, t): return "\(f): no tensor named '\(t)'"
        case let .wrongDType(f, t, d, e): return "\(f): tensor '\(t)' is \(d), expected \(e)"
        case let .badIndex(f, r): return "\(f): invalid sharded-checkpoint index (\(r))"
        }
    }
}

extension SafeTensorsError: CustomDebugStringConvertible {
    public var debugDescription: String { description }
}
