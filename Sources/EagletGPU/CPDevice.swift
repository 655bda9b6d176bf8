// Chapter 13's schemes with every tensor on the device: each rank runs the flash kernel on its shard, merges block
// results by log-sum-exp in fp32, and moves bf16 rows to its peers with the exchange of the block after next
// overlapping the attention of the block in hand (docs/spec.md §8.2–8.4; docs/gpu.md "Context parallelism").
//
// What it is: the schemes written once over `CPDeviceBackend`, a rank's view of its device — row-major matrices
// (bf16 inputs, fp32 accumulators), the flash kernel with a merge, a strided copy, and one group of sends and
// receives at a time on a second stream. Two backends run it: `GPUCPBackend` (GPUContextParallel.swift: the
// kernels, over NCCL or over ranks that are threads sharing one GPU) and `CPHostBackend` below, which runs the same
// program on the CPU — FlashPlan's tile-for-tile copy of the kernel, the merge kernel's twin, a thread
// communicator — so CI checks every scheme's device program (which blocks, offsets, copies, messages, bytes)
// where no GPU exists.
// Layout: rank r holds its n tokens in `plan.layouts[r]` order, q as (n, H·D) and k, v side by side as
// (n, 2·Hkv·D) — [k heads | v heads] — so one row range moves both; results are out (n, H·D) and lse (H, n) fp32.
// The ring passes kv, llama3 all-gathers it, Ulysses moves (q | k | v) column slices to head owners and (out, lse)
// back; USP's Ulysses and ring groups are lists of global ranks on one communicator (peers are global ranks).
// What it is not: a backward (the CPU schemes have one, Backward.swift) or masks other than causal per sequence.
import ContextParallel
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Tensor

/// What a rank's device program asks of its device. Peers are global ranks; every rank issues the same sequence
/// of calls (SPMD), and messages between an ordered pair arrive in the order they were sent.
public protocol CPDeviceBackend: AnyObject {
    associatedtype Matrix
    var rank: Int { get }
    var worldSize: Int { get }
    /// Bytes this rank has sent to other ranks (2 per bf16 element, 4 per fp32).
    var bytesSent: Int { get }
    /// A rows × cols matrix of bf16 (or fp32) elements, filled with `fill` (nil: left as it comes, for a matrix the
    /// program overwrites in full before reading it).
    func matrix(rows: Int, cols: Int, bf16: Bool, fill: Float?) throws -> Matrix
    /// dst[dr ..< dr + rows, dc ..< dc + cols] = src[sr ..< sr + rows, sc ..< sc + cols] (same element type).
    func copy(
        _ src: Matrix, row sr: Int, col sc: Int, to dst: Matrix, row dr: Int, col dc: Int, rows: Int, cols: Int
    ) throws
    /// The flash kernel on rows `call.queryRow ..<` of q (H = `heads` heads of D from column 0) against kv rows
    /// `call.keyRow ..<` (k heads from column 0, v heads from column `valueColumn`), its bf16 block out and fp32 lse
    /// merged into rows `accRow + ...` of accOut (n, H·D) and accLse (H, n) by the sigmoid update.
    func attend(
        q: Matrix, kv: Matrix, valueColumn: Int, call: CPBlockCall, heads h: Int, kvHeads hkv: Int, headDim d: Int,
        accOut: Matrix, accLse: Matrix
    ) throws
    /// One group: the first `rows` rows of each send go to its peer, each receive's first `rows` rows come from
    /// its peer. Starts after every `copy` and `attend` issued so far; returns at once where the device can run
    /// it beside later work.
    func exchange(sends: [(peer: Int, matrix: Matrix, rows: Int)], receives: [(peer: Int, matrix: Matrix, rows: Int)])
        throws
    /// Work issued after this waits for every exchange issued before it.
    func joinExchanges() throws
}

/// One flash-kernel call of a rank's program: queries `queryRow ..< queryRow + rows` of the local q against keys
/// `keyRow ..< keyRow + keys` of a kv matrix; causal with query i seeing key j when j ≤ start + i, else every key.
public struct CPBlockCall: Equatable, Sendable {
    public var queryRow: Int, rows: Int, keyRow: Int, keys: Int
    public var causal: Bool, start: Int

    public init(queryRow: Int, rows: Int, keyRow: Int, keys: Int, causal: Bool, start: Int) {
        self.queryRow = queryRow; self.rows = rows; self.keyRow = keyRow; self.keys = keys
        self.causal = causal; self.start = start
    }

    /// The call that computes every visible (query, key) pair of segment `q` (its rows start at `qRow`) against
    /// segment `k` (at `kRow`), or nil when none is visible. Queries before the first key are left out, keys no
    /// query sees are cut, and a block every query sees whole runs without the mask; `start` is never negative.
    public static func between(_ q: Segment, at qRow: Int, _ k: Segment, at kRow: Int) -> CPBlockCall? {
        guard q.sequenceStart == k.sequenceStart, k.start < q.end else { return nil }
        let first = max(q.start, k.start)
        let keys = min(k.count, q.end - k.start)
        let causal = k.start + keys - 1 > first
        return CPBlockCall(
            queryRow: qRow + first - q.start, rows: q.end - first, keyRow: kRow, keys: keys, causal: causal,
            start: causal ? first - k.start : 0)
    }

    /// Score entries (query, key) the call computes per head.
    public var entries: Int {
        guard causal else { return rows * keys }
        return (0..<rows).reduce(0) { $0 + max(0, min(keys, start + $1 + 1)) }
    }
}

/// One rank's result: out (n, H·D) and lse (H, n) fp32, and the score entries its calls computed (all heads).
public struct CPDeviceResult<M> {
    public let out: M, lse: M
    public let scoreEntries: Int
}

extension CPPlan {
    /// Bytes each rank sends in the device program: chapter 13's `forwardBytesPerRank` with q, k and v moved as
    /// `inputBytes`-byte elements (2: bf16) and Ulysses' (out, lse) rows coming back in fp32:
    ///     ring, zigzag, llama3:  (W − 1) · 2 · Hkv · n · D · e
    ///     ulysses / usp:         (U − 1) · n · [ e·(h + 2·h_kv)·D + 4·h·(D + 1) ]  +  (R − 1) · 2 · h_kv · (T/R) · D · e
    /// (e = 4 is `forwardBytesPerRank`).
    public func deviceForwardBytesPerRank(headDim d: Int, inputBytes e: Int = 2) -> Int {
        let n = totalTokens / world
        switch strategy {
        case .ring, .zigzag, .llama3:
            return (world - 1) * 2 * kvHeads * n * d * e
        case .ulysses, .usp:
            let h = heads / ulysses, hkv = kvHeadRange(ulyssesRank: 0).count
            let a2a = (ulysses - 1) * n * (e * (h + 2 * hkv) * d + 4 * h * (d + 1))
            return a2a + (ring - 1) * 2 * hkv * (totalTokens / ring) * d * e
        }
    }
}

/// Runs `plan`'s scheme as rank `backend.rank`: q (n, H·D) and kv (n, 2·Hkv·D) bf16 hold its tokens in
/// `plan.layouts[rank]` order.
public func deviceContextParallel<B: CPDeviceBackend>(
    plan: CPPlan, headDim d: Int, q: B.Matrix, kv: B.Matrix, backend: B
) throws -> CPDeviceResult<B.Matrix> {
    precondition(
        backend.worldSize == plan.world, "deviceContextParallel: \(backend.worldSize) ranks, plan \(plan.world)")
    switch plan.strategy {
    case .ring, .zigzag:
        return try deviceRing(
            q: q, kv: kv, layouts: plan.layouts, members: Array(0..<plan.world), heads: plan.heads,
            kvHeads: plan.kvHeads, headDim: d, backend: backend)
    case .llama3:
        return try deviceLlama3(q: q, kv: kv, plan: plan, headDim: d, backend: backend)
    case .ulysses, .usp:
        return try deviceUSP(q: q, kv: kv, plan: plan, headDim: d, backend: backend)
    }
}

/// Ring (or zigzag, by the layouts) among the global ranks `members`: the kv block of src = (i − s) mod R is in
/// hand at step s, and the exchange that brings step s + 1's block runs while step s attends.
func deviceRing<B: CPDeviceBackend>(
    q: B.Matrix, kv: B.Matrix, layouts: [Layout], members: [Int], heads h: Int, kvHeads hkv: Int, headDim d: Int,
    backend: B
) throws -> CPDeviceResult<B.Matrix> {
    guard let i = members.firstIndex(of: backend.rank) else {
        preconditionFailure("deviceRing: rank \(backend.rank) is not in \(members)")
    }
    let w = members.count, n = Sharding.tokenCount(layouts[i])
    let maxRows = layouts.map(Sharding.tokenCount).max() ?? 0
    let accOut = try backend.matrix(rows: n, cols: h * d, bf16: false, fill: 0)
    let accLse = try backend.matrix(rows: h, cols: n, bf16: false, fill: -.infinity)
    // Blocks arrive in up to two buffers by turns, so the one arriving never lands on the one in hand, and the
    // caller's kv is never written.
    let arriving = try (0..<min(2, w - 1)).map { _ in
        try backend.matrix(rows: maxRows, cols: 2 * hkv * d, bf16: true, fill: nil)
    }
    var here = kv, entries = 0
    for step in 0..<w {
        let src = (i - step + w) % w
        var next: B.Matrix? = nil
        if step < w - 1 {
            let incoming = arriving[step % arriving.count]
            try backend.exchange(
                sends: [(members[(i + 1) % w], here, Sharding.tokenCount(layouts[src]))],
                receives: [(members[(i - 1 + w) % w], incoming, Sharding.tokenCount(layouts[(src - 1 + w) % w]))])
            next = incoming
        }
        var qo = 0
        for qs in layouts[i] {
            var ko = 0
            for ks in layouts[src] {
                if let call = CPBlockCall.between(qs, at: qo, ks, at: ko) {
                    try backend.attend(
                        q: q, kv: here, valueColumn: hkv * d, call: call, heads: h, kvHeads: hkv, headDim: d,
                        accOut: accOut, accLse: accLse)
                    entries += call.entries * h
                }
                ko += ks.count
            }
            qo += qs.count
        }
        try backend.joinExchanges()
        if let next { here = next }
    }
    return CPDeviceResult(out: accOut, lse: accLse, scoreEntries: entries)
}

/// Llama3-style: every rank's kv gathered, put back in global order, then each local segment attends causally
/// to the prefix of its sequence in one call.
func deviceLlama3<B: CPDeviceBackend>(
    q: B.Matrix, kv: B.Matrix, plan: CPPlan, headDim d: Int, backend: B
) throws -> CPDeviceResult<B.Matrix> {
    let r = backend.rank, w = plan.world, h = plan.heads, hkv = plan.kvHeads, cols = 2 * hkv * d
    let counts = plan.layouts.map(Sharding.tokenCount)
    var parts = [B.Matrix]()
    for j in 0..<w {
        parts.append(j == r ? kv : try backend.matrix(rows: counts[j], cols: cols, bf16: true, fill: nil))
    }
    let others = (1..<w).map { (r + $0) % w }
    try backend.exchange(
        sends: others.map { ($0, kv, counts[r]) }, receives: others.map { ($0, parts[$0], counts[$0]) })
    try backend.joinExchanges()
    let full = try backend.matrix(rows: plan.totalTokens, cols: cols, bf16: true, fill: nil)
    for j in 0..<w {
        var o = 0
        for s in plan.layouts[j] {
            try backend.copy(parts[j], row: o, col: 0, to: full, row: s.start, col: 0, rows: s.count, cols: cols)
            o += s.count
        }
    }
    let n = counts[r]
    let accOut = try backend.matrix(rows: n, cols: h * d, bf16: false, fill: 0)
    let accLse = try backend.matrix(rows: h, cols: n, bf16: false, fill: -.infinity)
    var qo = 0, entries = 0
    for s in plan.layouts[r] {
        let prefix = Segment(start: s.sequenceStart, count: s.end - s.sequenceStart, sequenceStart: s.sequenceStart)
        if let call = CPBlockCall.between(s, at: qo, prefix, at: prefix.start) {
            try backend.attend(
                q: q, kv: full, valueColumn: hkv * d, call: call, heads: h, kvHeads: hkv, headDim: d, accOut: accOut,
                accLse: accLse)
            entries += call.entries * h
        }
        qo += s.count
    }
    return CPDeviceResult(out: accOut, lse: accLse, scoreEntries: entries)
}

/// Ulysses (R = 1) or Ulysses × zigzag ring: q, k, v column slices to their head owners in the Ulysses group, the
/// ring among the ranks with the same Ulysses index, then out and lse rows home.
func deviceUSP<B: CPDeviceBackend>(
    q: B.Matrix, kv: B.Matrix, plan: CPPlan, headDim d: Int, backend: B
) throws -> CPDeviceResult<B.Matrix> {
    let u = plan.ulysses, rr = plan.ring, g = backend.rank
    let ui = g % u, ringRank = g / u, hl = plan.heads / u, hkv = plan.kvHeads
    let uMembers = (0..<u).map { ringRank * u + $0 }, rMembers = (0..<rr).map { ui + u * $0 }
    let n = Sharding.tokenCount(plan.layouts[g])
    let counts = (0..<u).map { Sharding.tokenCount(plan.layouts[ringRank * u + $0]) }
    let offsets = counts.indices.map { counts[..<$0].reduce(0, +) }
    let total = counts.reduce(0, +)
    let hkvl = plan.kvHeadRange(ulyssesRank: ui).count
    // Sequence shards → head shards: piece j holds this rank's rows of rank j's heads, (q | k | v).
    let width = (hl + 2 * hkvl) * d
    var pieces = [B.Matrix]()
    for j in 0..<u {
        let kvr = plan.kvHeadRange(ulyssesRank: j)
        let p = try backend.matrix(rows: n, cols: width, bf16: true, fill: nil)
        try backend.copy(q, row: 0, col: j * hl * d, to: p, row: 0, col: 0, rows: n, cols: hl * d)
        try backend.copy(kv, row: 0, col: kvr.lowerBound * d, to: p, row: 0, col: hl * d, rows: n, cols: hkvl * d)
        try backend.copy(
            kv, row: 0, col: (hkv + kvr.lowerBound) * d, to: p, row: 0, col: (hl + hkvl) * d, rows: n, cols: hkvl * d)
        pieces.append(p)
    }
    var got = [B.Matrix]()
    for j in 0..<u {
        got.append(j == ui ? pieces[j] : try backend.matrix(rows: counts[j], cols: width, bf16: true, fill: nil))
    }
    let peers = (0..<u).filter { $0 != ui }
    try backend.exchange(
        sends: peers.map { (uMembers[$0], pieces[$0], n) }, receives: peers.map { (uMembers[$0], got[$0], counts[$0]) })
    try backend.joinExchanges()
    let qr = try backend.matrix(rows: total, cols: hl * d, bf16: true, fill: nil)
    let kvRing = try backend.matrix(rows: total, cols: 2 * hkvl * d, bf16: true, fill: nil)
    for j in 0..<u {
        try backend.copy(got[j], row: 0, col: 0, to: qr, row: offsets[j], col: 0, rows: counts[j], cols: hl * d)
        try backend.copy(
            got[j], row: 0, col: hl * d, to: kvRing, row: offsets[j], col: 0, rows: counts[j], cols: 2 * hkvl * d)
    }
    let res = try deviceRing(
        q: qr, kv: kvRing, layouts: plan.ringLayouts, members: rMembers, heads: hl, kvHeads: hkvl, headDim: d,
        backend: backend)
    // Head shards → sequence shards: rank j gets its rows of out and the matching lse columns, fp32.
    var outs = [B.Matrix](), lses = [B.Matrix]()
    for j in 0..<u {
        let o = try backend.matrix(rows: counts[j], cols: hl * d, bf16: false, fill: nil)
        let l = try backend.matrix(rows: hl, cols: counts[j], bf16: false, fill: nil)
        try backend.copy(res.out, row: offsets[j], col: 0, to: o, row: 0, col: 0, rows: counts[j], cols: hl * d)
        try backend.copy(res.lse, row: 0, col: offsets[j], to: l, row: 0, col: 0, rows: hl, cols: counts[j])
        outs.append(o); lses.append(l)
    }
    var homeOut = [B.Matrix](), homeLse = [B.Matrix]()
    for j in 0..<u {
        homeOut.append(j == ui ? outs[j] : try backend.matrix(rows: n, cols: hl * d, bf16: false, fill: nil))
        homeLse.append(j == ui ? lses[j] : try backend.matrix(rows: hl, cols: n, bf16: false, fill: nil))
    }
    try backend.exchange(
        sends: peers.flatMap { [(uMembers[$0], outs[$0], counts[$0]), (uMembers[$0], lses[$0], hl)] },
        receives: peers.flatMap { [(uMembers[$0], homeOut[$0], n), (uMembers[$0], homeLse[$0], hl)] })
    try backend.joinExchanges()
    let out = try backend.matrix(rows: n, cols: plan.heads * d, bf16: false, fill: nil)
    let lse = try backend.matrix(rows: plan.heads, cols: n, bf16: false, fill: nil)
    for j in 0..<u {
        try backend.copy(homeOut[j], row: 0, col: 0, to: out, row: 0, col: j * hl * d, rows: n, cols: hl * d)
        try backend.copy(homeLse[j], row: 0, col: 0, to: lse, row: j * hl, col: 0, rows: hl, cols: n)
    }
    return CPDeviceResult(out: out, lse: lse, scoreEntries: res.scoreEntries)
}

// MARK: - The program on the CPU

/// A matrix of `CPHostBackend`: values held as Float (bf16 ones rounded to bf16 when written).
public final class HostMatrix {
    public let rows: Int, cols: Int, bf16: Bool
    public var values: [Float]
    /// Filled with `fill` (rounded to bf16 for a bf16 matrix); nil fills NaN, so a program that reads an element
    /// it never wrote shows it.
    init(rows: Int, cols: Int, bf16: Bool, fill: Float?) {
        self.rows = rows; self.cols = cols; self.bf16 = bf16
        let v = fill ?? .nan
        values = [Float](repeating: bf16 ? bf16ToFloat(floatToBF16(v)) : v, count: rows * cols)
    }
    /// A bf16 matrix from fp32 rows (rounded to nearest even).
    public convenience init(bf16 rows: Int, cols: Int, _ x: [Float]) {
        precondition(x.count == rows * cols, "HostMatrix: \(x.count) values for \(rows) × \(cols)")
        self.init(rows: rows, cols: cols, bf16: true, fill: 0)
        values = x.map { bf16ToFloat(floatToBF16($0)) }
    }
}

/// The device program on the CPU: `attend` is FlashPlan (the kernel's tiles, bf16 P and output) followed by the
/// merge kernel's twin, exchanges go through `comm` (sent at once, so a group cannot deadlock), in order.
public final class CPHostBackend: CPDeviceBackend {
    public let comm: Communicator
    public var rank: Int { comm.rank }
    public var worldSize: Int { comm.worldSize }
    public private(set) var bytesSent = 0
    /// Every call's FlashPlan tile width (the Hopper kernel's 128 or the mma.sync kernel's 64).
    let tileKeys: Int

    public init(comm: Communicator, tileKeys: Int = FlashPlan.hopperTileKeys) {
        self.comm = comm; self.tileKeys = tileKeys
    }

    public func matrix(rows: Int, cols: Int, bf16: Bool, fill: Float?) throws -> HostMatrix {
        HostMatrix(rows: rows, cols: cols, bf16: bf16, fill: fill)
    }

    public func copy(
        _ src: HostMatrix, row sr: Int, col sc: Int, to dst: HostMatrix, row dr: Int, col dc: Int, rows: Int,
        cols: Int
    ) throws {
        precondition(src.bf16 == dst.bf16, "copy: element types differ")
        precondition(sr + rows <= src.rows && dr + rows <= dst.rows && sc + cols <= src.cols && dc + cols <= dst.cols)
        for i in 0..<rows {
            for c in 0..<cols { dst.values[(dr + i) * dst.cols + dc + c] = src.values[(sr + i) * src.cols + sc + c] }
        }
    }

    public func attend(
        q: HostMatrix, kv: HostMatrix, valueColumn: Int, call: CPBlockCall, heads h: Int, kvHeads hkv: Int,
        headDim d: Int, accOut: HostMatrix, accLse: HostMatrix
    ) throws {
        let qs = Array(q.values[(call.queryRow * q.cols)..<((call.queryRow + call.rows) * q.cols)])
        let kvRows = Array(kv.values[(call.keyRow * kv.cols)..<((call.keyRow + call.keys) * kv.cols)])
        let ks = kvRows, vs = Array(kvRows[valueColumn...])
        let (o, l) = FlashPlan.attention(
            q: qs, qStride: q.cols, k: ks, v: vs, kvStride: kv.cols, tokens: call.rows, keys: call.keys, heads: h,
            kvHeads: hkv, headDim: d, causal: call.causal, start: call.start, tileKeys: tileKeys)
        CPHostBackend.merge(
            out: &accOut.values, lse: &accLse.values, accRows: accLse.cols, row0: call.queryRow, blockOut: o,
            blockLse: l, rows: call.rows, heads: h, headDim: d)
    }

    /// The twin of the `cp_merge` kernel: ContextParallel's sigmoid merge (Merge.swift) per head, on rows H·D apart.
    /// out (·, H·D) rows from row0, lse (H, accRows); block out (t, H·D), block lse (H, t).
    static func merge(
        out: inout [Float], lse: inout [Float], accRows: Int, row0: Int, blockOut: [Float], blockLse: [Float],
        rows t: Int, heads h: Int, headDim d: Int
    ) {
        out.withUnsafeMutableBufferPointer { O in
            lse.withUnsafeMutableBufferPointer { L in
                blockOut.withUnsafeBufferPointer { B in
                    blockLse.withUnsafeBufferPointer { BL in
                        for head in 0..<h {
                            mergeRowsSigmoid(
                                out: O.baseAddress! + row0 * h * d + head * d,
                                lse: L.baseAddress! + head * accRows + row0,
                                blockOut: B.baseAddress! + head * d, blockLse: BL.baseAddress! + head * t, rows: t,
                                d: d,
                                outStride: h * d, blockStride: h * d)
                        }
                    }
                }
            }
        }
    }

    public func exchange(
        sends: [(peer: Int, matrix: HostMatrix, rows: Int)], receives: [(peer: Int, matrix: HostMatrix, rows: Int)]
    ) throws {
        for s in sends {
            let n = s.rows * s.matrix.cols
            if s.peer != rank { bytesSent += n * (s.matrix.bf16 ? 2 : 4) }
            comm.send(Array(s.matrix.values[0..<n]), to: s.peer)
        }
        for r in receives {
            let got = comm.recv(from: r.peer)
            precondition(got.count == r.rows * r.matrix.cols, "exchange: \(got.count) values for \(r.rows) rows")
            r.matrix.values.replaceSubrange(0..<got.count, with: got)
        }
    }

    public func joinExchanges() throws {}
}
