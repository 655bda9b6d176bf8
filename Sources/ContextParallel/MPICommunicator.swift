// Ranks as processes under Open MPI (Debian's openmpi-bin / libopenmpi-dev), loaded at run time.
//
// What it is: `MPICommunicator.fromEnvironment()` notices a launch by `mpirun` (OMPI_COMM_WORLD_SIZE in
// the environment), dlopens libmpi.so.40 and looks up the handful of functions used (MPI_Init,
// MPI_Comm_rank, MPI_Comm_size, MPI_Sendrecv, MPI_Send, MPI_Recv, MPI_Barrier, MPI_Finalize). In Open MPI
// the handles MPI_COMM_WORLD, MPI_FLOAT and MPI_INT are the addresses of the global objects
// `ompi_mpi_comm_world`, `ompi_mpi_float`, `ompi_mpi_int`, which dlsym also finds. Nothing links
// libmpi, so eaglet runs where Open MPI is absent. Each message is a length (one MPI_INT) followed by the
// floats, so a receiver need not know sizes in advance; only the floats count as bytes sent.
// What it is not: portable to MPICH (whose handles are integers), or non-blocking.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Open MPI could not be loaded or initialised.
public enum MPIError: Error, CustomStringConvertible {
    case unavailable(String)
    public var description: String {
        switch self {
        case .unavailable(let why): return "MPI: \(why)"
        }
    }
}

public final class MPICommunicator: Communicator {
    typealias InitFn =
        @convention(c) (
            UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?
        ) -> Int32
    typealias CommIntFn = @convention(c) (UnsafeMutableRawPointer, UnsafeMutablePointer<Int32>) -> Int32
    typealias SendrecvFn =
        @convention(c) (
            UnsafeRawPointer?, Int32, UnsafeMutableRawPointer, Int32, Int32,
            UnsafeMutableRawPointer?, Int32, UnsafeMutableRawPointer, Int32, Int32,
            UnsafeMutableRawPointer, UnsafeMutableRawPointer?
        ) -> Int32
    typealias SendFn =
        @convention(c) (UnsafeRawPointer?, Int32, UnsafeMutableRawPointer, Int32, Int32, UnsafeMutableRawPointer) ->
        Int32
    typealias RecvFn =
        @convention(c) (
            UnsafeMutableRawPointer?, Int32, UnsafeMutableRawPointer, Int32, Int32,
            UnsafeMutableRawPointer, UnsafeMutableRawPointer?
        ) -> Int32
    typealias CommFn = @convention(c) (UnsafeMutableRawPointer) -> Int32
    typealias VoidFn = @convention(c) () -> Int32

    public let rank: Int
    public let worldSize: Int
    public private(set) var bytesSent = 0
    let sendrecvFn: SendrecvFn, sendFn: SendFn, recvFn: RecvFn, barrierFn: CommFn, finalizeFn: VoidFn
    let world: UnsafeMutableRawPointer, floatType: UnsafeMutableRawPointer, intType: UnsafeMutableRawPointer

    /// True when this process was started by Open MPI's mpirun.
    public static var launchedByMPI: Bool { ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

    /// Loads libmpi and calls MPI_Init. Throws `MPIError.unavailable` when the library or a symbol is missing.
    public init() throws {
        var handle: UnsafeMutableRawPointer? = nil
        for name in ["libmpi.so.40", "libmpi.so"] {
            handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL)
            if handle != nil { break }
        }
        guard let h = handle else {
            throw MPIError.unavailable(
                "cannot load libmpi.so.40 (install openmpi-bin and libopenmpi-dev): \(String(cString: dlerror()))")
        }
        func sym(_ n: String) throws -> UnsafeMutableRawPointer {
            guard let p = dlsym(h, n) else { throw MPIError.unavailable("symbol \(n) not found in libmpi") }
            return p
        }
        let initFn = unsafeBitCast(try sym("MPI_Init"), to: InitFn.self)
        let rankFn = unsafeBitCast(try sym("MPI_Comm_rank"), to: CommIntFn.self)
        let sizeFn = unsafeBitCast(try sym("MPI_Comm_size"), to: CommIntFn.self)
        sendrecvFn = unsafeBitCast(try sym("MPI_Sendrecv"), to: SendrecvFn.self)
        sendFn = unsafeBitCast(try sym("MPI_Send"), to: SendFn.self)
        recvFn = unsafeBitCast(try sym("MPI_Recv"), to: RecvFn.self)
        barrierFn = unsafeBitCast(try sym("MPI_Barrier"), to: CommFn.self)
        finalizeFn = unsafeBitCast(try sym("MPI_Finalize"), to: VoidFn.self)
        world = try sym("ompi_mpi_comm_world")
        floatType = try sym("ompi_mpi_float")
        intType = try sym("ompi_mpi_int")
        guard initFn(nil, nil) == 0 else { throw MPIError.unavailable("MPI_Init failed") }
        var r: Int32 = 0, s: Int32 = 0
        _ = rankFn(world, &r); _ = sizeFn(world, &s)
        rank = Int(r); worldSize = Int(s)
    }

    /// Calls MPI_Finalize; the communicator must not be used afterwards.
    public func finalize() { _ = finalizeFn() }

    public func send(_ data: [Float], to dest: Int) {
        if dest != rank { bytesSent += data.count * 4 }
        var count = Int32(data.count)
        _ = sendFn(&count, 1, intType, Int32(dest), 0, world)
        data.withUnsafeBufferPointer { _ = sendFn($0.baseAddress, count, floatType, Int32(dest), 1, world) }
    }

    public func recv(from source: Int) -> [Float] {
        var count: Int32 = 0
        _ = recvFn(&count, 1, intType, Int32(source), 0, world, nil)
        var out = [Float](repeating: 0, count: Int(count))
        out.withUnsafeMutableBufferPointer {
            _ = recvFn($0.baseAddress, count, floatType, Int32(source), 1, world, nil)
        }
        return out
    }

    public func sendRecv(_ data: [Float], to dest: Int, from source: Int) -> [Float] {
        if dest == rank && source == rank { return data }
        if dest != rank { bytesSent += data.count * 4 }
        var count = Int32(data.count), incoming: Int32 = 0
        _ = sendrecvFn(&count, 1, intType, Int32(dest), 2, &incoming, 1, intType, Int32(source), 2, world, nil)
        var out = [Float](repeating: 0, count: Int(incoming))
        data.withUnsafeBufferPointer { S in
            out.withUnsafeMutableBufferPointer { R in
                _ = sendrecvFn(
                    S.baseAddress, count, floatType, Int32(dest), 3, R.baseAddress, incoming, floatType,
                    Int32(source), 3, world, nil)
            }
        }
        return out
    }

    public func barrier() { _ = barrierFn(world) }
}
