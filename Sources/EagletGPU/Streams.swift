// CUDA streams and events for the one place the GPU mirror runs two queues at once: context parallelism, whose
// exchanges (one stream) overlap the attention of the block already here (another stream), chapter 13.
//
// What it is: `GPUStream` (cuStreamCreate with the blocking flag, so the legacy default stream that uploads and
// downloads use still waits for it) and `GPUEvent` (a point in a stream another stream can wait for; timing
// events measure the time between two points on the device). Both are freed with their Swift object.
// What it is not: a scheduler — callers order their work by recording and waiting on events.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One CUDA stream of `gpu`'s context.
// Not Sendable, as GPU: its context is current on the thread that opened the GPU.
public final class GPUStream {
    let gpu: GPU
    let handle: OpaquePointer?

    public init(_ gpu: GPU) throws {
        self.gpu = gpu
        var s: OpaquePointer? = nil
        try gpu.check(gpu.driver.cuStreamCreate(&s, 0), "cuStreamCreate")
        handle = s
    }

    deinit { _ = gpu.driver.cuStreamDestroy(handle) }

    /// Blocks the calling thread until everything issued to the stream has run.
    public func synchronize() throws { try gpu.check(gpu.driver.cuStreamSynchronize(handle), "cuStreamSynchronize") }

    /// Work issued to this stream from now on starts after `event`'s point (recorded on any stream of the context).
    public func wait(_ event: GPUEvent) throws {
        try gpu.check(gpu.driver.cuStreamWaitEvent(handle, event.handle, 0), "cuStreamWaitEvent")
    }

    /// A new event recorded here: it completes once everything issued to the stream so far has run.
    public func record(timing: Bool = false) throws -> GPUEvent {
        let e = try GPUEvent(gpu, timing: timing)
        try gpu.check(gpu.driver.cuEventRecord(e.handle, handle), "cuEventRecord")
        return e
    }

    /// `bytes` bytes from `src` to `dst`, in stream order.
    public func copy(from src: DevicePointer, to dst: DevicePointer, bytes: Int) throws {
        guard bytes > 0 else { return }
        try gpu.check(gpu.driver.cuMemcpyDtoDAsync(dst, src, bytes, handle), "cuMemcpyDtoDAsync_v2(\(bytes) bytes)")
    }
}

/// A CUDA event: a point in a stream.
public final class GPUEvent {
    let gpu: GPU
    let handle: OpaquePointer?

    /// CU_EVENT_DISABLE_TIMING (2) unless `timing`: an event only waited on costs less.
    init(_ gpu: GPU, timing: Bool) throws {
        self.gpu = gpu
        var e: OpaquePointer? = nil
        try gpu.check(gpu.driver.cuEventCreate(&e, timing ? 0 : 2), "cuEventCreate")
        handle = e
    }

    deinit { _ = gpu.driver.cuEventDestroy(handle) }

    /// Blocks the calling thread until the event's point has run.
    public func synchronize() throws { try gpu.check(gpu.driver.cuEventSynchronize(handle), "cuEventSynchronize") }

    /// Seconds on the device from `start` to this event (both recorded with `timing`; waits for this one).
    public func seconds(since start: GPUEvent) throws -> Double {
        try synchronize()
        var ms: Float = 0
        try gpu.check(gpu.driver.cuEventElapsedTime(&ms, start.handle, handle), "cuEventElapsedTime")
        return Double(ms) / 1000
    }
}
