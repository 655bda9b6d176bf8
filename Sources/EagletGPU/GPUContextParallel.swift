// The device program of CPDevice.swift on GPUs: `GPUCPBackend` runs each rank's attention, merges and copies on a
// compute stream and its exchanges on a second stream, over one of two `DeviceExchange`s:
//   NCCLDeviceExchange   one process per GPU: each group is ncclGroupStart, ncclSend / ncclRecv of the rows as
//                        bytes straight from and into device memory, ncclGroupEnd, on the exchange stream;
//   LocalDeviceExchange  W ranks as threads sharing this process's one GPU: a receive is a device-to-device copy
//                        from the sender's matrix, ordered by events both ways (the sender's rows are ready; the
//                        receiver has copied them, so the sender may reuse the matrix). It checks every scheme's
//                        device program on the kernels on a machine with one GPU; its timings share that GPU.
// An exchange waits (event) for all compute issued before it; `joinExchanges` makes later compute wait for it, so
// the ring's next block travels while the block in hand is attended.
// What it is not: a second kernel — attention is `GPU.flashAttention`, the merge is `cp_merge` (twin:
// CPHostBackend.merge), copies are `cp_copy2d`.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import ContextParallel
import Tensor
import _Essentials

enum KernelSourceCP {
    static let module = "eaglet_cp"
    static let source = #"""
        #define NEG_INF __int_as_float(0xff800000)
        typedef unsigned short bf16;
        __device__ __forceinline__ float bf2f(bf16 u) { return __uint_as_float(((unsigned)u) << 16); }

        // Running (out, lse) of rows row0 ..< row0 + t += a block's (o_b bf16 (t, H·D), lse_b (H, t)), one block of
        // D threads per (row, head): out −= σ(lb − la)·(out − o_b), la −= log σ(la − lb) (docs/spec.md §8.3).
        extern "C" __global__ void cp_merge(float* out, float* lse, int acc_rows, int row0, const bf16* bo,
                                            const float* bl, int t, int H, int D) {
            int i = blockIdx.x, h = blockIdx.y, c = threadIdx.x;
            float lb = bl[(long)h * t + i];
            long li = (long)h * acc_rows + row0 + i;
            float la = lse[li];
            __syncthreads();
            if (lb == NEG_INF) return;
            long o = (long)(row0 + i) * H * D + h * D + c, b = (long)i * H * D + h * D + c;
            float v = bf2f(bo[b]);
            if (la == NEG_INF) {
                out[o] = v;
                if (c == 0) lse[li] = lb;
                return;
            }
            float s = 1.f / (1.f + expf(la - lb));
            out[o] -= s * (out[o] - v);
            float x = la - lb;
            if (c == 0) lse[li] = la - (fminf(x, 0.f) - log1pf(expf(-fabsf(x))));
        }

        // rows × width bytes (even) from src (pitch sp bytes) to dst (pitch dp bytes), two bytes a thread.
        extern "C" __global__ void cp_copy2d(const bf16* src, long sp, bf16* dst, long dp, long width, long rows) {
            long w = width / 2, n = w * rows;
            for (long k = (long)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (long)gridDim.x * blockDim.x) {
                long r = k / w, c = k % w;
                dst[r * (dp / 2) + c] = src[r * (sp / 2) + c];
            }
        }

        extern "C" __global__ void cp_fill32(unsigned* x, unsigned v, long n) {
            for (long k = (long)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (long)gridDim.x * blockDim.x)
                x[k] = v;
        }
        """#
}

extension GPU {
    /// Compiles (or loads from the cache) the fp32 module (its bf16 rounding), the flash kernels and the device
    /// program's merge, copy and fill kernels. Ranks that are threads of one process call it once on the main thread
    /// first, so they only read the compile cache.
    public func loadContextParallelKernels() throws {
        try loadKernels()
        try loadKernelsBF16()
        try load(source: KernelSourceCP.source, key: KernelSourceCP.module)
    }
}

/// Moves bytes between ranks' device memory, one group at a time, in `stream` order. Peers are global ranks.
public protocol DeviceExchange: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }
    /// Every send's bytes to its peer, every receive's from its peer, as one group.
    func group(
        sends: [(peer: Int, pointer: DevicePointer, bytes: Int)],
        receives: [(peer: Int, pointer: DevicePointer, bytes: Int)], stream: GPUStream
    ) throws
    /// Returns once every rank has called it (the device work before it need not be finished).
    func barrier() throws
}

/// A matrix of `GPUCPBackend`: rows × cols bf16 or fp32 elements, row-major, in one device buffer.
public final class GPUMatrix {
    public let buffer: GPUBuffer
    public let rows: Int, cols: Int
    public var bf16: Bool { buffer.elementSize == 2 }
    init(_ buffer: GPUBuffer, rows: Int, cols: Int) { self.buffer = buffer; self.rows = rows; self.cols = cols }
    func row(_ i: Int) -> DevicePointer { buffer.at(i * cols) }
}

/// One rank's device: the program's compute on `compute`, its exchanges on `exchangeStream`.
public final class GPUCPBackend: CPDeviceBackend {
    public let gpu: GPU
    public let exchanges: DeviceExchange
    public let compute: GPUStream, exchangeStream: GPUStream
    public var rank: Int { exchanges.rank }
    public var worldSize: Int { exchanges.worldSize }
    public private(set) var bytesSent = 0
    /// false: compute waits for each exchange as soon as it is issued (the serial schedule, to measure what
    /// overlapping saves).
    public var overlap = true
    /// The last exchange's end, which `joinExchanges` makes compute wait for.
    private var lastExchange: GPUEvent?
    /// The flash kernel's block out (bf16) and lse, grown as needed and kept: freed buffers go back to the GPU's
    /// pool, which is only safe on one stream.
    private var blockOut: GPUBuffer?, blockLse: GPUBuffer?
    /// Every matrix the program made, kept until `release` (their buffers may still be read by queued work).
    private var keep: [GPUMatrix] = []

    public init(gpu: GPU, exchanges: DeviceExchange) throws {
        self.gpu = gpu; self.exchanges = exchanges
        compute = try GPUStream(gpu); exchangeStream = try GPUStream(gpu)
        try gpu.loadContextParallelKernels()
    }

    /// Waits for both streams, then lets go of the program's matrices.
    public func release() throws {
        try compute.synchronize(); try exchangeStream.synchronize()
        keep = []
    }

    func launch(_ name: String, elements n: Int, _ args: [KernelArgument]) throws {
        guard n > 0 else { return }
        try gpu.launch(
            KernelSourceCP.module, name, grid: (min((n + 255) / 256, 4096), 1, 1), block: (256, 1, 1), stream: compute,
            args)
    }

    public func matrix(rows: Int, cols: Int, bf16: Bool, fill: Float?) throws -> GPUMatrix {
        let m = GPUMatrix(try gpu.alloc(rows * cols, elementSize: bf16 ? 2 : 4), rows: rows, cols: cols)
        keep.append(m)
        if let fill {
            let bits = bf16 ? UInt32(floatToBF16(fill)) * 0x1_0001 : fill.bitPattern
            try launch(
                "cp_fill32", elements: m.buffer.bytes / 4,
                [.ptr(m.buffer), .int32(Int32(bitPattern: bits)), .int64(Int64(m.buffer.bytes / 4))])
        }
        return m
    }

    /// Uploads fp32 rows as a new matrix (bf16: rounded to nearest even on the device). The caller holds it:
    /// `release` does not let it go.
    public func upload(_ x: [Float], rows: Int, cols: Int, bf16: Bool) throws -> GPUMatrix {
        precondition(x.count == rows * cols, "upload: \(x.count) values for \(rows) × \(cols)")
        let f = try gpu.upload(x)
        return GPUMatrix(bf16 ? try gpu.bf16(f) : f, rows: rows, cols: cols)
    }

    /// A matrix's values as fp32 (waits for the device).
    public func download(_ m: GPUMatrix) throws -> [Float] {
        try compute.synchronize()
        return m.bf16 ? try gpu.downloadBF16(m.buffer) : try gpu.download(m.buffer)
    }

    public func copy(
        _ src: GPUMatrix, row sr: Int, col sc: Int, to dst: GPUMatrix, row dr: Int, col dc: Int, rows: Int, cols: Int
    ) throws {
        precondition(src.bf16 == dst.bf16, "copy: element types differ")
        precondition(sr + rows <= src.rows && dr + rows <= dst.rows && sc + cols <= src.cols && dc + cols <= dst.cols)
        let e = src.buffer.elementSize
        try launch(
            "cp_copy2d", elements: rows * cols * e / 2,
            [
                .pointer(src.row(sr) + DevicePointer(sc * e)), .int64(Int64(src.cols * e)),
                .pointer(dst.row(dr) + DevicePointer(dc * e)), .int64(Int64(dst.cols * e)),
                .int64(Int64(cols * e)), .int64(Int64(rows))
            ])
    }

    public func attend(
        q: GPUMatrix, kv: GPUMatrix, valueColumn: Int, call: CPBlockCall, heads h: Int, kvHeads hkv: Int,
        headDim d: Int, accOut: GPUMatrix, accLse: GPUMatrix
    ) throws {
        if (blockOut?.count ?? 0) < call.rows * h * d { blockOut = try gpu.alloc(call.rows * h * d, elementSize: 2) }
        if (blockLse?.count ?? 0) < call.rows * h { blockLse = try gpu.alloc(call.rows * h) }
        guard let bo = blockOut, let bl = blockLse else { return }
        let k = kv.row(call.keyRow)
        try gpu.flashAttention(
            q: q.row(call.queryRow), qStride: q.cols, k: k, v: k + DevicePointer(valueColumn * 2), kvStride: kv.cols,
            out: bo.pointer, outStride: h * d, lse: bl.pointer, tokens: call.rows, keys: call.keys, heads: h,
            kvHeads: hkv, headDim: d, causal: call.causal, start: call.start, stream: compute)
        try gpu.launch(
            KernelSourceCP.module, "cp_merge", grid: (call.rows, h, 1), block: (d, 1, 1), stream: compute,
            [
                .ptr(accOut.buffer), .ptr(accLse.buffer), .int(accLse.cols), .int(call.queryRow), .ptr(bo), .ptr(bl),
                .int(call.rows), .int(h), .int(d)
            ])
    }

    public func exchange(
        sends: [(peer: Int, matrix: GPUMatrix, rows: Int)], receives: [(peer: Int, matrix: GPUMatrix, rows: Int)]
    ) throws {
        try exchangeStream.wait(try compute.record())
        func rows(_ x: (peer: Int, matrix: GPUMatrix, rows: Int)) -> (peer: Int, pointer: DevicePointer, bytes: Int) {
            (x.peer, x.matrix.buffer.pointer, x.rows * x.matrix.cols * x.matrix.buffer.elementSize)
        }
        let s = sends.map(rows), r = receives.map(rows)
        for x in s where x.peer != rank { bytesSent += x.bytes }
        try exchanges.group(sends: s, receives: r, stream: exchangeStream)
        lastExchange = try exchangeStream.record()
        if !overlap { try joinExchanges() }
    }

    public func joinExchanges() throws {
        if let e = lastExchange { try compute.wait(e) }
    }
}

// MARK: - Ranks as threads on one GPU

/// What the rank threads of one `LocalDeviceExchange` group share: the messages posted (a pointer and the event
/// after which its rows are ready) and the receivers' acknowledgements, per ordered pair of ranks, and a barrier.
public final class LocalDeviceBoard: Sendable {
    struct Message { let pointer: DevicePointer, bytes: Int, ready: GPUEvent }
    let messages: PairQueues<Message>, acks: PairQueues<GPUEvent>
    let barrier: ThreadBarrier
    var world: Int { messages.world }

    public init(world: Int) {
        messages = PairQueues(world: world); acks = PairQueues(world: world)
        barrier = ThreadBarrier(parties: world)
    }
}

/// One rank of a group of threads sharing one GPU (each thread opened the GPU, so the primary context is current on
/// it). A group posts each send (its pointer and an event after the rows are ready), copies each receive from the
/// sender's pointer once the sender's event has passed and acknowledges it with an event, then makes its stream
/// wait for the acknowledgements of its own sends.
public final class LocalDeviceExchange: DeviceExchange {
    public let rank: Int
    public var worldSize: Int { board.world }
    let board: LocalDeviceBoard

    public init(rank: Int, board: LocalDeviceBoard) { self.rank = rank; self.board = board }

    public func group(
        sends: [(peer: Int, pointer: DevicePointer, bytes: Int)],
        receives: [(peer: Int, pointer: DevicePointer, bytes: Int)], stream: GPUStream
    ) throws {
        for s in sends {
            board.messages.put(
                .init(pointer: s.pointer, bytes: s.bytes, ready: try stream.record()), from: rank, to: s.peer)
        }
        for r in receives {
            let msg = board.messages.take(from: r.peer, to: rank)
            guard msg.bytes == r.bytes else {
                throw GPUError.unsupported(
                    "rank \(rank) expected \(r.bytes) bytes from rank \(r.peer), got \(msg.bytes)")
            }
            try stream.wait(msg.ready)
            try stream.copy(from: msg.pointer, to: r.pointer, bytes: r.bytes)
            board.acks.put(try stream.record(), from: rank, to: r.peer)
        }
        for s in sends { try stream.wait(board.acks.take(from: s.peer, to: rank)) }
    }

    public func barrier() throws { board.barrier.wait() }
}

// MARK: - NCCL

/// One rank of an NCCL communicator (NCCLDeviceTransport's): every group moves bytes (ncclUint8) between device
/// buffers on the exchange stream. After `splitForUSP`, a group whose peers all sit in this rank's Ulysses group
/// (or all in its ring group) goes through that group's own communicator, made by ncclCommSplit — the two levels of
/// Eagle's USP, each free to take its own path (NVLink inside a node, the network between nodes).
public final class NCCLDeviceExchange: DeviceExchange {
    public let transport: NCCLDeviceTransport
    public var rank: Int { transport.rank }
    public var worldSize: Int { transport.worldSize }
    /// Sub-communicators: their members (global ranks, in their rank order) and handle.
    public private(set) var subgroups: [(members: [Int], comm: OpaquePointer?)] = []

    public init(transport: NCCLDeviceTransport) { self.transport = transport }

    deinit { for g in subgroups { _ = transport.api.commDestroy(g.comm) } }

    /// USP's two levels for `plan` (U > 1 and R > 1): the Ulysses groups (global ranks ringRank·U ..< (ringRank+1)·U,
    /// color ringRank) and the ring groups (ranks u, u + U, …, color U + u), each by ncclCommSplit — every rank must
    /// call it. Returns false, leaving every group on the world communicator, where NCCL has no ncclCommSplit
    /// (before 2.18) or the plan has one level.
    @discardableResult
    public func splitForUSP(_ plan: CPPlan) throws -> Bool {
        guard plan.ulysses > 1, plan.ring > 1, let split = transport.api.commSplit else { return false }
        let u = plan.ulysses, g = rank
        for (color, key, members) in [
            (g / u, g % u, (0..<u).map { (g / u) * u + $0 }),
            (u + g % u, g / u, (0..<plan.ring).map { g % u + u * $0 })
        ] {
            var c: OpaquePointer? = nil
            try transport.api.check(
                split(transport.comm, Int32(color), Int32(key), &c, nil), "ncclCommSplit(color \(color), key \(key))")
            subgroups.append((members, c))
        }
        return true
    }

    public func group(
        sends: [(peer: Int, pointer: DevicePointer, bytes: Int)],
        receives: [(peer: Int, pointer: DevicePointer, bytes: Int)], stream: GPUStream
    ) throws {
        let api = transport.api
        let peers = Set(sends.map(\.peer) + receives.map(\.peer))
        let sub = subgroups.first { g in peers.allSatisfy { g.members.contains($0) } }
        let comm = sub?.comm ?? transport.comm
        func local(_ p: Int) -> Int32 { Int32(sub?.members.firstIndex(of: p) ?? p) }
        func raw(_ p: DevicePointer) -> UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: UInt(p)) }
        try api.check(api.groupStart(), "ncclGroupStart")
        for s in sends {
            try api.check(
                api.send(raw(s.pointer), s.bytes, NCCLDataType.uint8.rawValue, local(s.peer), comm, stream.handle),
                "ncclSend(\(s.bytes) bytes to rank \(s.peer))")
        }
        for r in receives {
            try api.check(
                api.recv(raw(r.pointer), r.bytes, NCCLDataType.uint8.rawValue, local(r.peer), comm, stream.handle),
                "ncclRecv(\(r.bytes) bytes from rank \(r.peer))")
        }
        try api.check(api.groupEnd(), "ncclGroupEnd")
    }

    public func barrier() throws { _ = try transport.allGather(.int64([0])) }
}
