// One generation at a time. The model runs on the CPU with every core (OpenBLAS threads, the row-split prefill), so
// two requests at once would only share the cores and both arrive later; they wait in line instead. The line is an
// actor: requests are admitted (or refused: 429 when --max-queue already wait, 503 once a shutdown signal came),
// started in arrival order, each on a thread of its own (the generation is synchronous CPU work that must not occupy
// the event loops or Swift's cooperative pool), and withdrawn when their client goes away before their turn.
// That thread is a plain pthread, not a Dispatch queue's: the model splits its work with concurrentPerform, and
// called from a queue's worker thread that ran the tiny-eagle prompt slower (generation start to first token, p50 of
// 200 requests, four interleaved pairs of runs: 15.2–15.7 ms on a serial queue, 12.6–13.1 ms on a pthread).
import Foundation
import _Essentials

/// The line of requests waiting for the model, and the thread that runs them one after another.
public actor GenerationQueue {
    /// One admitted request: what to run, its cancellation flag, where its events go.
    struct Job {
        let id: Int
        let request: ChatRequest
        let cancel: CancellationFlag
        let events: AsyncStream<GenerationEvent>.Continuation
        let admitted: ContinuousClock.Instant
    }

    public let model: ChatModel
    /// How many requests may wait behind the one running.
    public let maxWaiting: Int
    private var waiting: [Job] = []
    private var running: Job?
    private var nextID = 0
    private var draining = false
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []

    public init(model: ChatModel, maxWaiting: Int) {
        self.model = model
        self.maxWaiting = maxWaiting
    }

    /// Requests running and waiting.
    public var load: (running: Int, waiting: Int) { (running == nil ? 0 : 1, waiting.count) }

    /// Admits `request`; its events arrive on the returned stream. Refuses it when the line is full or the server is
    /// shutting down. If whoever reads the stream stops (its task cancelled, the stream dropped), `cancel` is set.
    public func submit(_ request: ChatRequest, cancel: CancellationFlag) throws(ServeError) -> AsyncStream<
        GenerationEvent
    > {
        if draining { throw .shuttingDown }
        if running != nil && waiting.count >= maxWaiting { throw .queueFull(waiting: waiting.count) }
        let (stream, continuation) = AsyncStream<GenerationEvent>.makeStream()
        continuation.onTermination = { reason in
            if case .cancelled = reason { cancel.cancel() }
        }
        nextID += 1
        waiting.append(Job(id: nextID, request: request, cancel: cancel, events: continuation, admitted: .now))
        startNext()
        return stream
    }

    /// Takes back the waiting requests whose clients went away (they free their places at once).
    public func withdrawCancelled() {
        for job in waiting where job.cancel.isCancelled {
            job.events.finish()
            printToStandardError("eaglet serve: cancelled while waiting: the client went away")
        }
        waiting.removeAll { $0.cancel.isCancelled }
    }

    /// After SIGTERM: refuses every waiting request (503) and every new one; the one running finishes.
    /// Returns how many were refused.
    @discardableResult
    public func drain() -> Int {
        draining = true
        let refused = waiting.count
        for job in waiting {
            job.events.yield(.failed(.shuttingDown))
            job.events.finish()
        }
        waiting.removeAll()
        return refused
    }

    /// Returns when nothing runs or waits.
    public func waitUntilIdle() async {
        if running == nil && waiting.isEmpty { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    private func startNext() {
        guard running == nil else { return }
        while let job = waiting.first {
            waiting.removeFirst()
            if job.cancel.isCancelled {
                job.events.finish()
                continue
            }
            running = job
            let model = self.model
            let worker = Thread { // one thread a request: it costs tens of µs against a generation of milliseconds
                model.run(job.request, cancel: job.cancel, queued: job.admitted) { job.events.yield($0) }
                job.events.finish()
                Task { await self.finished(job.id) }
            }
            worker.stackSize = 8 << 20
            worker.start()
            return
        }
        for w in idleWaiters { w.resume() }
        idleWaiters.removeAll()
    }

    private func finished(_ id: Int) {
        if running?.id == id { running = nil }
        startNext()
    }
}
