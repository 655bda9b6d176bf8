// Ranks as OS threads in one process: the test and teaching stand-in for a multi-GPU group.
//
// What it is: `ThreadWorld.run(world:)` starts W POSIX threads (not Swift concurrency tasks: ranks block
// on each other, which would starve the small cooperative pool at 8 ranks on 2 cores), hands each a
// `ThreadCommunicator`, and returns every rank's result. Messages are queued per ordered pair
// (source, destination) behind one pthread condition variable, so `send` never blocks and `recv` waits for
// the next message from its source. OpenBLAS runs single-threaded while ranks run (BLAS.setThreads(1)).
// pthreads rather than Foundation's Thread and NSCondition, so the module needs only FoundationEssentials and
// the static `eaglet-gpu` (which runs these schemes over NCCL) carries no ICU (docs/gpu.md).
// What it is not: shared-memory zero-copy; every message is a copied [Float], like a real transfer.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Tensor
import _Essentials

/// The shared mailboxes of one thread group: the messages between each ordered pair of ranks, and a barrier.
final class ThreadMailboxes: Sendable {
    let queues: PairQueues<[Float]>
    let barrier: ThreadBarrier
    var world: Int { queues.world }

    init(world: Int) {
        queues = PairQueues(world: world)
        barrier = ThreadBarrier(parties: world)
    }
}

/// One rank of a thread group.
// @unchecked: `bytesSent` is only touched by the one rank thread that owns this communicator;
// the shared `box` guards itself.
public final class ThreadCommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public var worldSize: Int { box.world }
    public private(set) var bytesSent = 0
    let box: ThreadMailboxes

    init(rank: Int, box: ThreadMailboxes) { self.rank = rank; self.box = box }

    public func send(_ data: [Float], to dest: Int) {
        precondition(dest >= 0 && dest < box.world, "send: rank \(dest) outside 0..<\(box.world)")
        if dest != rank { bytesSent += data.count * 4 }
        box.queues.put(data, from: rank, to: dest)
    }

    public func recv(from source: Int) -> [Float] {
        precondition(source >= 0 && source < box.world, "recv: rank \(source) outside 0..<\(box.world)")
        return box.queues.take(from: source, to: rank)
    }

    /// Sends never block here, so send-then-receive cannot deadlock.
    public func sendRecv(_ data: [Float], to dest: Int, from source: Int) -> [Float] {
        send(data, to: dest)
        return recv(from: source)
    }

    public func barrier() { box.barrier.wait() }
}

/// Per-rank result slots, written under a lock by the rank threads.
// @unchecked: the rank threads write their own slot with `lock` held; `run` reads them only after every thread was
// joined.
final class RankResults<T>: @unchecked Sendable {
    var values: [T?]
    let lock = Mutex()
    init(_ n: Int) { values = Array(repeating: nil, count: n) }
    func set(_ r: Int, _ v: T) { lock.lock(); values[r] = v; lock.unlock() }
}

/// Runs groups of ranks as threads.
public enum ThreadWorld {
    /// Runs `body` on W threads (rank 0 … W−1), each with its own `ThreadCommunicator` and a stack of
    /// `stackSize` bytes, and returns the results indexed by rank. OpenBLAS is set to one thread for the
    /// duration. Every rank needs its own thread (they wait for each other), so a thread that cannot be
    /// started stops the process with the reason.
    public static func run<T>(world: Int, stackSize: Int = 16 << 20, _ body: @escaping @Sendable (Communicator) -> T)
        -> [T]
    {
        precondition(world >= 1, "ThreadWorld.run: world \(world) < 1")
        let box = ThreadMailboxes(world: world)
        let savedThreads = BLAS.threads
        BLAS.setThreads(1)
        defer { BLAS.setThreads(savedThreads) }
        let results = RankResults<T>(world)
        var threads = [pthread_t]()
        for r in 0..<world {
            let comm = ThreadCommunicator(rank: r, box: box)
            guard let th = startThread(stackSize: stackSize, { results.set(r, body(comm)) }) else {
                preconditionFailure("ThreadWorld.run: cannot start the thread of rank \(r) (pthread_create failed)")
            }
            threads.append(th)
        }
        for th in threads { pthread_join(th, nil) }
        return results.values.map { $0! }
    }
}
