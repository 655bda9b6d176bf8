// Ranks as OS threads in one process: the test and teaching stand-in for a multi-GPU group.
//
// What it is: `ThreadWorld.run(world:)` starts W Foundation `Thread`s (not Swift concurrency tasks:
// ranks block on each other, which would starve the small cooperative pool at 8 ranks on 2 cores), hands
// each a `ThreadCommunicator`, and returns every rank's result. Messages are queued per ordered pair
// (source, destination) behind one condition variable, so `send` never blocks and `recv` waits for the
// next message from its source. OpenBLAS runs single-threaded while ranks run (BLAS.setThreads(1)).
// What it is not: shared-memory zero-copy; every message is a copied [Float], like a real transfer.
import Foundation
import Tensor

/// The shared mailboxes of one thread group.
// @unchecked: `queues`, `barrierCount` and `barrierGeneration` are only read and written with `cond` locked.
final class ThreadMailboxes: @unchecked Sendable {
    let world: Int
    let cond = NSCondition()
    var queues: [[[Float]]]
    var barrierCount = 0
    var barrierGeneration = 0

    init(world: Int) {
        self.world = world
        queues = [[[Float]]](repeating: [], count: world * world)
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
// @unchecked: the rank threads write their own slot under `lock`; `run` reads them only after every rank has signalled
// `done`.
final class RankResults<T>: @unchecked Sendable {
    var values: [T?]
    init(_ n: Int) { values = Array(repeating: nil, count: n) }
}

/// Runs groups of ranks as threads.
public enum ThreadWorld {
    /// Runs `body` on W threads (rank 0 … W−1), each with its own `ThreadCommunicator`, and returns the
    /// results indexed by rank. OpenBLAS is set to one thread for the duration.
    public static func run<T>(world: Int, stackSize: Int = 16 << 20, _ body: @escaping @Sendable (Communicator) -> T)
        -> [T]
    {
        precondition(world >= 1, "ThreadWorld.run: world \(world) < 1")
        let box = ThreadMailboxes(world: world)
        let savedThreads = BLAS.threads
        BLAS.setThreads(1)
        defer { BLAS.setThreads(savedThreads) }
        let results = RankResults<T>(world)
        let lock = NSLock()
        let done = DispatchSemaphore(value: 0)
        for r in 0..<world {
            let comm = ThreadCommunicator(rank: r, box: box)
            let thread = Thread {
                let value = body(comm)
                lock.lock(); results.values[r] = value; lock.unlock()
                done.signal()
            }
            thread.stackSize = stackSize
            thread.name = "eaglet-rank-\(r)"
            thread.start()
        }
        for _ in 0..<world { done.wait() }
        return results.values.map { $0! }
    }
}
