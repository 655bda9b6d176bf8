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

/// The shared mailboxes of one thread group.
// @unchecked: `queues`, `barrierCount` and `barrierGeneration` are only read and written with `cond` locked.
final class ThreadMailboxes: @unchecked Sendable {
    let world: Int
    let cond = Condition()
    var queues: [[[Float]]]
    var barrierCount = 0
    var barrierGeneration = 0

    init(world: Int) {
        self.world = world
        queues = [[[Float]]](repeating: [], count: world * world)
    }
}

/// A pthread mutex with one condition variable (NSCondition's job): lock, wait (unlocks while asleep),
/// broadcast, unlock.
// @unchecked: the mutex and condition are allocated in init, freed in deinit and only used through pthread calls.
final class Condition: @unchecked Sendable {
    private let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let c = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    init() { pthread_mutex_init(m, nil); pthread_cond_init(c, nil) }
    deinit { pthread_cond_destroy(c); pthread_mutex_destroy(m); c.deallocate(); m.deallocate() }
    func lock() { pthread_mutex_lock(m) }
    func unlock() { pthread_mutex_unlock(m) }
    func wait() { pthread_cond_wait(c, m) }
    func broadcast() { pthread_cond_broadcast(c) }
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
        box.cond.lock()
        box.queues[rank * box.world + dest].append(data)
        box.cond.broadcast()
        box.cond.unlock()
    }

    public func recv(from source: Int) -> [Float] {
        precondition(source >= 0 && source < box.world, "recv: rank \(source) outside 0..<\(box.world)")
        let q = source * box.world + rank
        box.cond.lock()
        while box.queues[q].isEmpty { box.cond.wait() }
        let data = box.queues[q].removeFirst()
        box.cond.unlock()
        return data
    }

    /// Sends never block here, so send-then-receive cannot deadlock.
    public func sendRecv(_ data: [Float], to dest: Int, from source: Int) -> [Float] {
        send(data, to: dest)
        return recv(from: source)
    }

    public func barrier() {
        box.cond.lock()
        let gen = box.barrierGeneration
        box.barrierCount += 1
        if box.barrierCount == box.world {
            box.barrierCount = 0
            box.barrierGeneration += 1
            box.cond.broadcast()
        } else {
            while box.barrierGeneration == gen { box.cond.wait() }
        }
        box.cond.unlock()
    }
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
