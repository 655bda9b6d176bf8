// Context parallelism over NCCL: chapter 13's `Communicator` for one rank on one GPU, one process per GPU
// (docs/spec.md §8.2–8.4; docs/gpu.md "Context parallelism over NCCL").
//
// What it is: `NCCLCommunicator` turns the protocol's host-array calls into NCCL calls and hands them to a
// transport. NCCL's receiver must know how many elements arrive, and the protocol's `recv` does not, so every
// message is two rounds, each one ncclGroupStart … ncclGroupEnd (so ranks that all exchange at once cannot
// deadlock): the count (one ncclInt64), then the floats (ncclFloat32; none when the count is 0). The
// collectives: all-gather is ncclAllGather of the counts, then of the floats when every rank has the same
// count (else the pairwise rounds); all-to-all is one group of sends and receives to and from every other
// rank, for the counts and then for the floats. USP's Ulysses and ring groups are `GroupCommunicator`s
// over this one communicator (peers by global rank). A rank's messages to itself stay on the host, free.
// `bytesSent` counts floats only, 4 bytes each, exactly as ThreadCommunicator and MPICommunicator do.
//
// Two transports carry the calls:
//   NCCLDeviceTransport  the real one: host arrays staged through device buffers (GPU.upload, download),
//                        the calls made on the legacy default stream, waited for by the copy back.
//   NCCLPlanTransport    no GPU: records every call (`NCCLCall`) and moves the same bytes through another
//                        Communicator (threads in the tests), so the call plan of every scheme is checked in CI
//                        — counts, peers, group balance and pairing — as GemmCall.emulate checks the cuBLAS plan.
// What it is not: overlapped with compute, zero-copy (every message is copied to and from the device), or
// tested on GPUs yet.
import ContextParallel
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import _Essentials

/// One NCCL call as `NCCLCommunicator` issues it (the plan; counts in elements).
public enum NCCLCall: Equatable, Sendable, CustomStringConvertible {
    case groupStart
    case groupEnd
    case send(count: Int, type: NCCLDataType, peer: Int)
    case recv(count: Int, type: NCCLDataType, peer: Int)
    /// ncclAllGather with `count` elements from every rank.
    case allGather(count: Int, type: NCCLDataType)

    public var description: String {
        switch self {
        case .groupStart: return "ncclGroupStart"
        case .groupEnd: return "ncclGroupEnd"
        case let .send(n, t, p): return "ncclSend(\(n) \(t) → \(p))"
        case let .recv(n, t, p): return "ncclRecv(\(n) \(t) ← \(p))"
        case let .allGather(n, t): return "ncclAllGather(\(n) \(t))"
        }
    }

    /// Bytes this call puts on the wire from this rank in a group of `world` ranks: a send its count times the
    /// element size, an all-gather (W − 1)·count·size (ring all-gather), the rest nothing.
    public func bytesSent(world: Int) -> Int {
        switch self {
        case let .send(n, t, _): return n * t.size
        case let .allGather(n, t): return (world - 1) * n * t.size
        default: return 0
        }
    }
}

/// The elements of one NCCL message on the host.
public enum NCCLPayload: Equatable, Sendable {
    case float32([Float])
    case int64([Int64])

    public var count: Int {
        switch self {
        case let .float32(x): return x.count
        case let .int64(x): return x.count
        }
    }
    public var type: NCCLDataType {
        if case .int64 = self { return .int64 }
        return .float32
    }
}

/// What `NCCLCommunicator` asks of the layer below: one NCCL group, and an all-gather.
public protocol NCCLTransport: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }
    /// ncclGroupStart; ncclSend of each of `sends`; ncclRecv of each of `receives`; ncclGroupEnd; then waits for
    /// the group and returns what each receive got, in the order of `receives`.
    func group(sends: [(peer: Int, payload: NCCLPayload)], receives: [(peer: Int, count: Int, type: NCCLDataType)])
        throws -> [NCCLPayload]
    /// ncclAllGather: every rank's `payload` (all of the same count), concatenated in rank order.
    func allGather(_ payload: NCCLPayload) throws -> NCCLPayload
}

/// One rank's `Communicator` over NCCL (or over the plan transport). Not Sendable: one rank, one thread.
public final class NCCLCommunicator: Communicator {
    public let transport: NCCLTransport
    public var rank: Int { transport.rank }
    public var worldSize: Int { transport.worldSize }
    public private(set) var bytesSent = 0
    /// Messages this rank sent to itself, oldest first.
    private var toSelf: [[Float]] = []

    public init(transport: NCCLTransport) { self.transport = transport }

    /// The Communicator protocol cannot throw, so an NCCL failure in the middle of a scheme ends the process
    /// with one line naming the call (exit 1); setup errors are thrown before any scheme runs.
    private func run<T>(_ body: () throws -> T) -> T {
        do { return try body() } catch {
            printToStandardError("eaglet: \(error)")
            exit(1)
        }
    }

    /// One message each way: the counts in one group, then the floats in another. `dest` or `source` may be
    /// this rank (kept on the host) or nil (no message that way).
    private func exchange(_ data: [Float]?, to dest: Int?, from source: Int?) -> [Float] {
        var got: [Float] = []
        var sendPeer: Int? = nil, recvPeer: Int? = nil
        if let dest, let data {
            if dest == rank { toSelf.append(data) } else { sendPeer = dest; bytesSent += data.count * 4 }
        }
        if let source {
            if source == rank {
                precondition(!toSelf.isEmpty, "NCCLCommunicator: rank \(rank) receives from itself what it never sent")
                got = toSelf.removeFirst()
            } else {
                recvPeer = source
            }
        }
        let n = data?.count ?? 0
        var incoming = 0
        run {
            let counts = try transport.group(
                sends: sendPeer.map { [($0, .int64([Int64(n)]))] } ?? [],
                receives: recvPeer.map { [($0, 1, .int64)] } ?? [])
            if case let .int64(c)? = counts.first, let m = c.first { incoming = Int(m) }
            let sends: [(peer: Int, payload: NCCLPayload)] =
                sendPeer.flatMap { n > 0 ? [($0, .float32(data ?? []))] : nil } ?? []
            let receives: [(peer: Int, count: Int, type: NCCLDataType)] =
                recvPeer.flatMap { incoming > 0 ? [($0, incoming, .float32)] : nil } ?? []
            guard !sends.isEmpty || !receives.isEmpty else { return }
            let floats = try transport.group(sends: sends, receives: receives)
            if case let .float32(x)? = floats.first { got = x }
        }
        return got
    }

    public func send(_ data: [Float], to dest: Int) { _ = exchange(data, to: dest, from: nil) }
    public func recv(from source: Int) -> [Float] { exchange(nil, to: nil, from: source) }
    public func sendRecv(_ data: [Float], to dest: Int, from source: Int) -> [Float] {
        if dest == rank && source == rank { return data }
        return exchange(data, to: dest, from: source)
    }

    /// An all-gather of one int64 (NCCL has no barrier).
    public func barrier() { _ = run { try transport.allGather(.int64([0])) } }

    /// ncclAllGather of the counts, then of the floats when every rank's count is the same (what NCCL's
    /// all-gather needs); unequal counts fall back to the pairwise rounds. (W − 1)·|data|·4 bytes either way.
    public func allGather(_ data: [Float]) -> [[Float]] {
        let w = worldSize
        guard w > 1 else { return [data] }
        let counts: [Int] = run {
            guard case let .int64(c) = try transport.allGather(.int64([Int64(data.count)])) else { return [] }
            return c.map { Int($0) }
        }
        guard counts.count == w, counts.allSatisfy({ $0 == data.count }) else { return pairwiseAllGather(data) }
        let n = data.count
        bytesSent += (w - 1) * n * 4
        guard n > 0 else { return [[Float]](repeating: [], count: w) }
        let all: [Float] = run {
            guard case let .float32(x) = try transport.allGather(.float32(data)) else { return [] }
            return x
        }
        return (0..<w).map { Array(all[($0 * n)..<(($0 + 1) * n)]) }
    }

    /// One group of counts to and from every other rank, then one group of the floats (Ulysses' all-to-all as
    /// grouped send/recv; NCCL has no all-to-all call). Σ_{j ≠ rank} |parts[j]|·4 bytes.
    public func allToAll(_ parts: [[Float]]) -> [[Float]] {
        let w = worldSize, r = rank
        precondition(parts.count == w, "allToAll: \(parts.count) parts for \(w) ranks")
        var got = [[Float]](repeating: [], count: w)
        got[r] = parts[r]
        guard w > 1 else { return got }
        let to = (1..<w).map { (r + $0) % w }, from = (1..<w).map { (r - $0 + w) % w }
        for j in to { bytesSent += parts[j].count * 4 }
        run {
            let counts = try transport.group(
                sends: to.map { ($0, .int64([Int64(parts[$0].count)])) }, receives: from.map { ($0, 1, .int64) })
            var incoming = [Int](repeating: 0, count: w)
            for (j, c) in zip(from, counts) { if case let .int64(x) = c, let m = x.first { incoming[j] = Int(m) } }
            let sends = to.filter { !parts[$0].isEmpty }.map { (peer: $0, payload: NCCLPayload.float32(parts[$0])) }
            let sources = from.filter { incoming[$0] > 0 }
            guard !sends.isEmpty || !sources.isEmpty else { return }
            let floats = try transport.group(
                sends: sends, receives: sources.map { (peer: $0, count: incoming[$0], type: NCCLDataType.float32) })
            for (j, p) in zip(sources, floats) { if case let .float32(x) = p { got[j] = x } }
        }
        return got
    }
}

/// The no-GPU transport: records every NCCL call and moves the same elements through `inner` (a
/// `ThreadCommunicator`, whose sends never block, so a group's sends then its receives cannot deadlock).
/// An int64 travels as two floats holding its bit pattern, so `inner.bytesSent` equals the recorded calls'
/// bytes. A receive whose count differs from what arrived, or an all-gather of unequal counts, throws
/// `NCCLError.planMismatch` (on a GPU it would be a hang or corrupt data).
public final class NCCLPlanTransport: NCCLTransport {
    public let inner: Communicator
    public private(set) var calls: [NCCLCall] = []
    public var rank: Int { inner.rank }
    public var worldSize: Int { inner.worldSize }

    public init(inner: Communicator) { self.inner = inner }

    static func encode(_ p: NCCLPayload) -> [Float] {
        switch p {
        case let .float32(x): return x
        case let .int64(x):
            return x.flatMap {
                let u = UInt64(bitPattern: $0)
                return [Float(bitPattern: UInt32(truncatingIfNeeded: u)), Float(bitPattern: UInt32(u >> 32))]
            }
        }
    }

    static func decode(_ x: [Float], as type: NCCLDataType) -> NCCLPayload {
        guard type == .int64 else { return .float32(x) }
        return .int64(
            stride(from: 0, to: x.count - 1, by: 2).map {
                Int64(bitPattern: UInt64(x[$0].bitPattern) | UInt64(x[$0 + 1].bitPattern) << 32)
            })
    }

    public func group(
        sends: [(peer: Int, payload: NCCLPayload)], receives: [(peer: Int, count: Int, type: NCCLDataType)]
    )
        throws -> [NCCLPayload]
    {
        calls.append(.groupStart)
        for s in sends { calls.append(.send(count: s.payload.count, type: s.payload.type, peer: s.peer)) }
        for r in receives { calls.append(.recv(count: r.count, type: r.type, peer: r.peer)) }
        calls.append(.groupEnd)
        for s in sends { inner.send(NCCLPlanTransport.encode(s.payload), to: s.peer) }
        return try receives.map { r in
            let got = NCCLPlanTransport.decode(inner.recv(from: r.peer), as: r.type)
            guard got.count == r.count, got.type == r.type else {
                throw NCCLError.planMismatch(
                    "rank \(rank) posted ncclRecv(\(r.count) \(r.type) ← \(r.peer)), rank \(r.peer) sent \(got.count) \(got.type)"
                )
            }
            return got
        }
    }

    public func allGather(_ payload: NCCLPayload) throws -> NCCLPayload {
        calls.append(.allGather(count: payload.count, type: payload.type))
        let parts = inner.allGather(NCCLPlanTransport.encode(payload)).map {
            NCCLPlanTransport.decode($0, as: payload.type)
        }
        guard parts.allSatisfy({ $0.count == payload.count }) else {
            throw NCCLError.planMismatch("ncclAllGather counts differ: \(parts.map(\.count))")
        }
        if payload.type == .int64 {
            return .int64(parts.flatMap { if case let .int64(x) = $0 { return x } else { return [] } })
        }
        return .float32(parts.flatMap { if case let .float32(x) = $0 { return x } else { return [] } })
    }
}

/// The GPU transport: one NCCL communicator on this process's GPU. Host arrays go up to device buffers, the
/// group runs on the legacy default stream, and the copies back (cuMemcpyDtoH, which waits for that stream)
/// return the received elements. Not Sendable: the GPU's context is current on the opening thread only.
public final class NCCLDeviceTransport: NCCLTransport {
    public let rank: Int
    public let worldSize: Int
    public let gpu: GPU
    /// Where libnccl was loaded from, and its version.
    public let libraryPath: String, version: String
    let api: NCCLAPI
    let comm: OpaquePointer?

    /// Loads NCCL and calls ncclCommInitRank on `gpu` (which must be current on this thread), which returns once
    /// all `world` ranks have joined with the same `id`.
    public init(gpu: GPU, rank: Int, world: Int, id: NCCLUniqueId) throws {
        guard world >= 1, rank >= 0, rank < world else { throw NCCLError.badRank(rank: rank, world: world) }
        api = try NCCLAPI.load()
        libraryPath = api.path
        version = try api.version()
        self.gpu = gpu; self.rank = rank; worldSize = world
        comm = try api.commInit(world: world, id: id, rank: rank)
    }

    deinit { _ = api.commDestroy(comm) }

    /// A fresh unique id from the NCCL found by the usual search (rank 0 calls this before anyone inits).
    public static func makeUniqueId() throws -> NCCLUniqueId { try NCCLAPI.load().uniqueId() }

    func upload(_ p: NCCLPayload) throws -> GPUBuffer {
        let b = try gpu.alloc(p.count, elementSize: p.type.size)
        let copy: (UnsafeRawBufferPointer) throws -> Void = { raw in
            guard let base = raw.baseAddress, raw.count > 0 else { return }
            try self.gpu.check(self.gpu.driver.cuMemcpyHtoD(b.pointer, base, raw.count), "cuMemcpyHtoD_v2")
        }
        switch p {
        case let .float32(x): try x.withUnsafeBytes(copy)
        case let .int64(x): try x.withUnsafeBytes(copy)
        }
        return b
    }

    func download(_ b: GPUBuffer, count: Int, type: NCCLDataType) throws -> NCCLPayload {
        func fill<T: Numeric>(_ zero: T) throws -> [T] {
            var out = [T](repeating: zero, count: count)
            try out.withUnsafeMutableBytes { raw in
                guard let base = raw.baseAddress, raw.count > 0 else { return }
                try gpu.check(gpu.driver.cuMemcpyDtoH(base, b.pointer, raw.count), "cuMemcpyDtoH_v2")
            }
            return out
        }
        return type == .int64 ? .int64(try fill(Int64(0))) : .float32(try fill(Float(0)))
    }

    static func raw(_ b: GPUBuffer) -> UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: UInt(b.pointer)) }

    public func group(
        sends: [(peer: Int, payload: NCCLPayload)], receives: [(peer: Int, count: Int, type: NCCLDataType)]
    )
        throws -> [NCCLPayload]
    {
        let sendBuffers = try sends.map { try upload($0.payload) }
        let recvBuffers = try receives.map { try gpu.alloc($0.count, elementSize: $0.type.size) }
        try api.check(api.groupStart(), "ncclGroupStart")
        for (s, b) in zip(sends, sendBuffers) {
            try api.check(
                api.send(Self.raw(b), s.payload.count, s.payload.type.rawValue, Int32(s.peer), comm, nil),
                "ncclSend(\(s.payload.count) \(s.payload.type) to rank \(s.peer))")
        }
        for (r, b) in zip(receives, recvBuffers) {
            try api.check(
                api.recv(Self.raw(b), r.count, r.type.rawValue, Int32(r.peer), comm, nil),
                "ncclRecv(\(r.count) \(r.type) from rank \(r.peer))")
        }
        try api.check(api.groupEnd(), "ncclGroupEnd")
        let got = try zip(receives, recvBuffers).map { try download($1, count: $0.count, type: $0.type) }
        withExtendedLifetime(sendBuffers) {}
        return got
    }

    public func allGather(_ payload: NCCLPayload) throws -> NCCLPayload {
        let n = payload.count
        let sendBuffer = try upload(payload)
        let recvBuffer = try gpu.alloc(n * worldSize, elementSize: payload.type.size)
        try api.check(
            api.allGather(Self.raw(sendBuffer), Self.raw(recvBuffer), n, payload.type.rawValue, comm, nil),
            "ncclAllGather(\(n) \(payload.type))")
        let got = try download(recvBuffer, count: n * worldSize, type: payload.type)
        withExtendedLifetime(sendBuffer) {}
        return got
    }
}

/// The unique id shared through a file: rank 0 writes the 128 bytes (to a temporary file in the same folder,
/// then renamed, so a reader never sees part of it); the other ranks poll for the file.
public enum NCCLUniqueIdFile {
    /// Rank 0: writes `id` to `path`. A file already there (from an earlier run) is refused: the other ranks
    /// could have read its stale id.
    public static func publish(_ id: NCCLUniqueId, to path: String) throws {
        guard access(path, F_OK) != 0 else {
            throw NCCLError.idFile(
                path: path, reason: "already exists (from an earlier run?); remove it or pick a new path")
        }
        let temp = path + ".tmp-\(getpid())"
        guard let f = fopen(temp, "wb") else {
            throw NCCLError.idFile(path: path, reason: "cannot create \(temp): \(String(cString: strerror(errno)))")
        }
        let written = id.bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        let closed = fclose(f)
        guard written == NCCLUniqueId.byteCount, closed == 0 else {
            unlink(temp)
            throw NCCLError.idFile(path: path, reason: "could not write 128 bytes to \(temp)")
        }
        guard rename(temp, path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(temp)
            throw NCCLError.idFile(path: path, reason: "cannot rename \(temp) to it: \(why)")
        }
    }

    /// The other ranks: polls every 50 ms until `path` holds 128 bytes, for at most `timeout` seconds.
    public static func wait(at path: String, timeout: Double) throws -> NCCLUniqueId {
        var waited = 0.0
        while true {
            if access(path, F_OK) == 0 {
                let bytes: [UInt8]
                do { bytes = try readRegularFile(path, limit: 4096) } catch {
                    throw NCCLError.idFile(path: path, reason: "\(error)")
                }
                return try NCCLUniqueId(bytes: bytes)
            }
            guard waited < timeout else { throw NCCLError.idFileTimeout(path: path, seconds: timeout) }
            usleep(50_000)
            waited += 0.05
        }
    }
}
