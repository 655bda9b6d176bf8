// NCCL (libnccl.so.2), bound at run time with dlopen/dlsym like the CUDA libraries in CUDA.swift, for context
// parallelism across GPUs (chapter 13's schemes, docs/spec.md §8.2–8.4; docs/gpu.md "Context parallelism over NCCL").
//
// What it is: the ten entry points `NCCLCommunicator` needs — ncclGetVersion, ncclGetUniqueId,
// ncclCommInitRank, ncclCommDestroy, ncclGetErrorString, ncclGroupStart, ncclGroupEnd, ncclSend, ncclRecv,
// ncclAllGather — typed as `@convention(c)` function pointers, and the library search: EAGLET_NCCL_LIBRARY
// (a file, or a folder holding libnccl.so.2), the CUDA search folders (CUDALibraries), the nvidia/nccl/lib
// folder of Python's nvidia-nccl wheels under /usr/lib/python3*, /usr/local/lib/python3* and
// ~/.local/lib/python3*, then the loader's own path. Facts from nccl.h: ncclUniqueId is 128 opaque bytes
// (NCCL_UNIQUE_ID_BYTES), ncclResult_t 0 is success, ncclDataType_t ncclInt64 = 4 and ncclFloat32 = 7.
// ncclCommInitRank takes the unique id by value, which a Swift function type cannot spell; it is called
// through the C shim `_CNCCL`. NCCL_NVLS_ENABLE is set to 0 (unless the environment already sets it) before
// the library is loaded: NVLink multicast (NVLS) is not available on the hosts this was written for.
// What it is not: the rest of NCCL (reductions, communicator splits, non-blocking communicators, user
// buffer registration). Streams: every call goes to the legacy default stream, as the rest of EagletGPU.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import _CNCCL

/// Why NCCL could not be used. Every case names what was tried or which call failed, and what to do.
public enum NCCLError: Error, CustomStringConvertible, Equatable {
    case libraryNotFound(tried: [String])
    case symbolNotFound(library: String, symbol: String)
    case call(name: String, code: Int32, message: String)
    case badUniqueId(byteCount: Int)
    case idFile(path: String, reason: String)
    case idFileTimeout(path: String, seconds: Double)
    case badRank(rank: Int, world: Int)
    case planMismatch(String)

    public var description: String {
        switch self {
        case let .libraryNotFound(tried):
            return "NCCL: could not load libnccl.so.2; tried \(tried.joined(separator: ", ")) "
                + "(set EAGLET_NCCL_LIBRARY to the library or its folder, or pip install nvidia-nccl-cu12)"
        case let .symbolNotFound(lib, sym): return "NCCL: \(lib) has no symbol \(sym) (NCCL older than 2.7?)"
        case let .call(name, code, message): return "NCCL: \(name) failed with ncclResult_t \(code) (\(message))"
        case let .badUniqueId(n): return "NCCL: a unique id is 128 bytes, got \(n)"
        case let .idFile(path, reason): return "NCCL: unique-id file \(path): \(reason)"
        case let .idFileTimeout(path, seconds):
            return "NCCL: no unique id appeared at \(path) within \(cFormatSeconds(seconds)) s "
                + "(is rank 0 running, with the same --id-file?)"
        case let .badRank(rank, world): return "NCCL: rank \(rank) is outside 0..<\(world)"
        case let .planMismatch(what): return "NCCL plan: \(what)"
        }
    }
}

func cFormatSeconds(_ s: Double) -> String { s == s.rounded() ? String(Int(s)) : String(s) }

/// The NCCL data types Eaglet sends (ncclDataType_t values of nccl.h).
public enum NCCLDataType: Int32, Sendable, CustomStringConvertible {
    /// Raw bytes: the device program's rows (bf16 and fp32 alike) travel as bytes.
    case uint8 = 1
    case int64 = 4
    case float32 = 7

    /// Bytes per element.
    public var size: Int { [.uint8: 1, .int64: 8][self] ?? 4 }
    public var description: String { [.uint8: "uint8", .int64: "int64"][self] ?? "float32" }
}

/// The 128 opaque bytes (ncclUniqueId) that name one NCCL communicator: rank 0 makes them with
/// ncclGetUniqueId, every rank passes the same bytes to ncclCommInitRank.
public struct NCCLUniqueId: Equatable, Sendable {
    public static let byteCount = 128
    public let bytes: [UInt8]

    /// Throws `NCCLError.badUniqueId` unless `bytes` has exactly 128 bytes.
    public init(bytes: [UInt8]) throws {
        guard bytes.count == NCCLUniqueId.byteCount else { throw NCCLError.badUniqueId(byteCount: bytes.count) }
        self.bytes = bytes
    }
}

/// Where libnccl.so.2 is looked for, in order.
public enum NCCLLibrary {
    /// The Python wheel folders (nvidia-nccl-cu12 / -cu13 put the library in site-packages/nvidia/nccl/lib).
    static var wheelPatterns: [String] {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "/root"
        var patterns = [String]()
        for prefix in ["/usr/lib/python3*", "/usr/local/lib/python3*", home + "/.local/lib/python3*"] {
            for packages in ["site-packages", "dist-packages"] {
                patterns.append(prefix + "/" + packages + "/nvidia/nccl/lib")
            }
        }
        return patterns
    }

    /// Candidate files: EAGLET_NCCL_LIBRARY (a file, or a folder holding libnccl.so.2), then libnccl.so.2 in
    /// the CUDA search folders and the Python wheel folders. The loader's own path (plain soname) comes last.
    public static var candidates: [String] {
        var files = [String]()
        if let env = ProcessInfo.processInfo.environment["EAGLET_NCCL_LIBRARY"], !env.isEmpty {
            files.append(env.hasSuffix(".so") || env.contains(".so.") ? env : env + "/libnccl.so.2")
        }
        var folders = CUDALibraries.searchFolders
        for pattern in wheelPatterns { folders += CUDALibraries.globPaths(pattern) }
        var seen = Set<String>()
        for folder in folders where seen.insert(folder).inserted { files.append(folder + "/libnccl.so.2") }
        return files
    }

    /// dlopens the first candidate that loads, else libnccl.so.2 by soname; throws `NCCLError.libraryNotFound`
    /// naming every file tried.
    static func open() throws -> (handle: UnsafeMutableRawPointer, path: String) {
        let tried = candidates
        if let found = CUDALibraries.dlopenFirst(tried, sonames: ["libnccl.so.2"]) { return found }
        throw NCCLError.libraryNotFound(tried: tried + ["the loader's default path"])
    }
}

/// The NCCL entry points (libnccl.so.2). Handles (ncclComm_t, cudaStream_t) are opaque pointers; device buffers
/// are passed as raw pointers made from their `DevicePointer`.
struct NCCLAPI {
    typealias Split =
        @convention(c) (OpaquePointer?, Int32, Int32, UnsafeMutablePointer<OpaquePointer?>, UnsafeMutableRawPointer?)
        -> Int32
    typealias P2P =
        @convention(c) (UnsafeMutableRawPointer?, Int, Int32, Int32, OpaquePointer?, OpaquePointer?) -> Int32
    let path: String
    let getVersion: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    let getUniqueId: @convention(c) (UnsafeMutableRawPointer) -> Int32
    /// ncclCommInitRank's address, called through `eaglet_nccl_comm_init_rank` (the id goes by value).
    let commInitRank: UnsafeMutableRawPointer
    let commDestroy: @convention(c) (OpaquePointer?) -> Int32
    let getErrorString: @convention(c) (Int32) -> UnsafePointer<CChar>?
    let groupStart: @convention(c) () -> Int32
    let groupEnd: @convention(c) () -> Int32
    /// ncclSend(sendbuff, count, datatype, peer, comm, stream) (sendbuff is const void*).
    let send: P2P
    /// ncclRecv(recvbuff, count, datatype, peer, comm, stream).
    let recv: P2P
    /// ncclCommSplit(comm, color, key, &newcomm, config) (NCCL 2.18 and later; nil before): the ranks that pass the
    /// same color form a new communicator, ordered by key. A collective call of every rank of `comm`.
    let commSplit: Split?
    /// ncclAllGather(sendbuff, recvbuff, sendcount, datatype, comm, stream).
    let allGather:
        @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, Int, Int32, OpaquePointer?, OpaquePointer?)
            -> Int32

    /// Loads the library (NCCL_NVLS_ENABLE=0 first, unless already set) and looks every entry point up.
    static func load() throws -> NCCLAPI {
        setenv("NCCL_NVLS_ENABLE", "0", 0)
        let (h, path) = try NCCLLibrary.open()
        func s<T>(_ n: String) throws -> T {
            guard let p = dlsym(h, n) else { throw NCCLError.symbolNotFound(library: path, symbol: n) }
            return unsafeBitCast(p, to: T.self)
        }
        guard let initRank = dlsym(h, "ncclCommInitRank") else {
            throw NCCLError.symbolNotFound(library: path, symbol: "ncclCommInitRank")
        }
        return NCCLAPI(
            path: path, getVersion: try s("ncclGetVersion"), getUniqueId: try s("ncclGetUniqueId"),
            commInitRank: initRank, commDestroy: try s("ncclCommDestroy"), getErrorString: try s("ncclGetErrorString"),
            groupStart: try s("ncclGroupStart"), groupEnd: try s("ncclGroupEnd"), send: try s("ncclSend"),
            recv: try s("ncclRecv"),
            commSplit: dlsym(h, "ncclCommSplit").map { unsafeBitCast($0, to: NCCLAPI.Split.self) },
            allGather: try s("ncclAllGather"))
    }

    /// Throws `NCCLError.call` with NCCL's own text for a result other than ncclSuccess.
    func check(_ code: Int32, _ call: @autoclosure () -> String) throws {
        guard code != 0 else { return }
        let message = getErrorString(code).map { String(cString: $0) } ?? "unknown"
        throw NCCLError.call(name: call(), code: code, message: message)
    }

    /// NCCL's version as major.minor.patch (ncclGetVersion: 2.19.3 is 21903; before 2.9, 2.8.4 was 2804).
    func version() throws -> String {
        var v: Int32 = 0
        try check(getVersion(&v), "ncclGetVersion")
        let n = Int(v)
        return n >= 10000 ? "\(n / 10000).\((n / 100) % 100).\(n % 100)" : "\(n / 1000).\((n / 100) % 10).\(n % 100)"
    }

    /// A fresh unique id (rank 0's job).
    func uniqueId() throws -> NCCLUniqueId {
        var bytes = [UInt8](repeating: 0, count: NCCLUniqueId.byteCount)
        let code = bytes.withUnsafeMutableBytes { getUniqueId($0.baseAddress!) }
        try check(code, "ncclGetUniqueId")
        return try NCCLUniqueId(bytes: bytes)
    }

    /// ncclCommInitRank(&comm, world, id, rank); blocks until all `world` ranks have called it with the same id.
    func commInit(world: Int, id: NCCLUniqueId, rank: Int) throws -> OpaquePointer? {
        var comm: UnsafeMutableRawPointer? = nil
        let code = id.bytes.withUnsafeBufferPointer {
            eaglet_nccl_comm_init_rank(commInitRank, &comm, Int32(world), $0.baseAddress, Int32(rank))
        }
        try check(code, "ncclCommInitRank(rank \(rank) of \(world))")
        return comm.map { OpaquePointer($0) }
    }
}
