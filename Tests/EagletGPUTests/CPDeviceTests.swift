// The device program of context parallelism (EagletGPU's CPDevice.swift) without a GPU: every scheme's program runs
// on thread ranks through CPHostBackend — FlashPlan (the flash kernel's tiles, bf16 P and output) for each block
// call, the merge kernel's twin, a thread communicator for each group — so which blocks, offsets, copies and
// messages the GPUs get is checked here. Each rank's out and lse are held against ContextParallel's
// `fullAttention` in fp32 (itself checked against PyTorch in ContextParallelTests) within the `bf16` row, and
// against FlashPlan over each whole sequence — what the single-GPU kernel computes — out within `bf16`, lse within
// `fp32-block`; bytes sent equal `deviceForwardBytesPerRank`; score entries add up to the causal count.
import ContextParallel
import EagletGPU
import Foundation
import QwenAttention
import Tensor
import Testing
import _TestSupport

/// q (T, H·D) and kv (T, 2·Hkv·D) rounded to bf16, and the references.
struct DeviceCPCase {
    let h: Int, hkv: Int, d: Int, cu: [Int]
    let q: [Float], kv: [Float]
    var t: Int { cu.last ?? 0 }

    init(heads h: Int, kvHeads hkv: Int, headDim d: Int, cuSeqlens cu: [Int]) {
        self.h = h; self.hkv = hkv; self.d = d; self.cu = cu
        let t = cu.last ?? 0
        q = Tensor.seeded([t * h * d], seed: 71).storage.map { bf16ToFloat(floatToBF16($0)) }
        kv = Tensor.seeded([t * 2 * hkv * d], seed: 72).storage.map { bf16ToFloat(floatToBF16($0)) }
    }

    /// fullAttention on (H, T, D) tensors, returned as out (T, H·D) and lse (H, T).
    func fp32Reference() throws -> (out: [Float], lse: [Float]) {
        func heads(_ x: [Float], _ n: Int, stride: Int, col0: Int) -> Tensor {
            var s = [Float](repeating: 0, count: n * t * d)
            for head in 0..<n {
                for i in 0..<t { for e in 0..<d { s[(head * t + i) * d + e] = x[i * stride + col0 + head * d + e] } }
            }
            return Tensor(shape: [n, t, d], storage: s)
        }
        let (o, l) = try fullAttention(
            q: heads(q, h, stride: h * d, col0: 0), k: heads(kv, hkv, stride: 2 * hkv * d, col0: 0),
            v: heads(kv, hkv, stride: 2 * hkv * d, col0: hkv * d), cuSeqlens: cu)
        var out = [Float](repeating: 0, count: t * h * d)
        for head in 0..<h {
            for i in 0..<t { for e in 0..<d { out[i * h * d + head * d + e] = o.storage[(head * t + i) * d + e] } }
        }
        return (out, l.storage)
    }

    /// FlashPlan over each whole sequence: the single-GPU kernel's result, out (T, H·D) and lse (H, T).
    func kernelReference() -> (out: [Float], lse: [Float]) {
        var out = [Float](), lse = [Float](repeating: 0, count: h * t)
        for s in 0..<(cu.count - 1) {
            let a = cu[s], b = cu[s + 1], n = b - a
            let kvRows = Array(kv[(a * 2 * hkv * d)..<(b * 2 * hkv * d)])
            let (o, l) = FlashPlan.attention(
                q: Array(q[(a * h * d)..<(b * h * d)]), qStride: h * d, k: kvRows, v: Array(kvRows[(hkv * d)...]),
                kvStride: 2 * hkv * d, tokens: n, keys: n, heads: h, kvHeads: hkv, headDim: d, causal: true, start: 0,
                tileKeys: FlashPlan.hopperTileKeys)
            out += o
            for head in 0..<h { for i in 0..<n { lse[head * t + a + i] = l[head * n + i] } }
        }
        return (out, lse)
    }

    func rows(_ x: [Float], cols: Int, _ layout: Layout) -> [Float] { GPUCPCheck.rows(x, cols: cols, layout) }
    func lseColumns(_ x: [Float], _ layout: Layout) -> [Float] { GPUCPCheck.columns(x, rows: h, total: t, layout) }
}

struct DeviceRankRun: Sendable {
    let out: [Float], lse: [Float]
    let bytes: Int, entries: Int
}

func runDeviceProgram(_ plan: CPPlan, _ c: DeviceCPCase) -> [DeviceRankRun] {
    ThreadWorld.run(world: plan.world) { comm in
        let backend = CPHostBackend(comm: comm)
        let l = plan.layouts[comm.rank], n = Sharding.tokenCount(l)
        let q = HostMatrix(bf16: n, cols: c.h * c.d, c.rows(c.q, cols: c.h * c.d, l))
        let kv = HostMatrix(bf16: n, cols: 2 * c.hkv * c.d, c.rows(c.kv, cols: 2 * c.hkv * c.d, l))
        do {
            let r = try deviceContextParallel(plan: plan, headDim: c.d, q: q, kv: kv, backend: backend)
            return DeviceRankRun(
                out: r.out.values, lse: r.lse.values, bytes: backend.bytesSent, entries: r.scoreEntries)
        } catch {
            Issue.record("rank \(comm.rank): \(error)")
            return DeviceRankRun(out: [], lse: [], bytes: 0, entries: 0)
        }
    }
}

@Suite struct CPDeviceTests {
    @Test func blockCallsComputeExactlyTheVisibleScores() {
        let segs = [
            Segment(start: 0, count: 8, sequenceStart: 0), Segment(start: 8, count: 8, sequenceStart: 0),
            Segment(start: 4, count: 12, sequenceStart: 0), Segment(start: 16, count: 4, sequenceStart: 16),
            Segment(start: 12, count: 4, sequenceStart: 0)
        ]
        for q in segs {
            for k in segs {
                let call = CPBlockCall.between(q, at: 0, k, at: 0)
                #expect((call?.entries ?? 0) == visibleScores(query: q, key: k), "\(q) × \(k)")
                if let call { #expect(call.start >= 0 && call.rows > 0 && call.keys > 0) }
            }
        }
        // Llama3's prefix call: a zigzag chunk against [sequence start, its end), bottom-right aligned.
        let chunk = Segment(start: 12, count: 4, sequenceStart: 0)
        let prefix = Segment(start: 0, count: 16, sequenceStart: 0)
        #expect(
            CPBlockCall.between(chunk, at: 4, prefix, at: 0)
                == CPBlockCall(queryRow: 4, rows: 4, keyRow: 0, keys: 16, causal: true, start: 12))
    }

    /// W = 3 runs the ring's three kv slots with an odd ring; usp at W = 8 with U = 4 gives each Ulysses rank one
    /// query head and one kv head.
    static let cases: [(CPStrategy, Int, Int?)] = [
        (.ring, 2, nil), (.ring, 3, nil), (.ring, 4, nil), (.zigzag, 2, nil), (.zigzag, 3, nil), (.zigzag, 4, nil),
        (.llama3, 2, nil), (.llama3, 4, nil), (.ulysses, 2, nil), (.ulysses, 4, nil), (.usp, 4, 2), (.usp, 8, 4)
    ]

    @Test(arguments: cases)
    func everySchemesDeviceProgramEqualsTheOneKernelAndFullAttention(strategy: CPStrategy, world: Int, u: Int?) throws {
        let c = DeviceCPCase(heads: 4, kvHeads: 2, headDim: 16, cuSeqlens: [0, 96])
        let plan = try CPPlan(
            strategy: strategy, world: world, heads: c.h, kvHeads: c.hkv, cuSeqlens: c.cu, ulysses: u)
        let runs = runDeviceProgram(plan, c)
        let fp32 = try c.fp32Reference(), kernel = c.kernelReference()
        for (r, run) in runs.enumerated() {
            let l = plan.layouts[r], what = "\(strategy) W=\(world) rank \(r)"
            _ = assertClose(run.out, c.rows(fp32.out, cols: c.h * c.d, l), .bf16, "\(what) out vs fullAttention")
            _ = assertClose(run.lse, c.lseColumns(fp32.lse, l), .bf16, "\(what) lse vs fullAttention")
            _ = assertClose(run.out, c.rows(kernel.out, cols: c.h * c.d, l), .bf16, "\(what) out vs the one kernel")
            _ = assertClose(run.lse, c.lseColumns(kernel.lse, l), .fp32Block, "\(what) lse vs the one kernel")
            #expect(run.bytes == plan.deviceForwardBytesPerRank(headDim: c.d), "\(what) bytes")
        }
        #expect(runs.reduce(0) { $0 + $1.entries } == c.h * c.t * (c.t + 1) / 2)
    }

    @Test(arguments: [CPStrategy.ring, .zigzag, .llama3])
    func packedSequencesToo(strategy: CPStrategy) throws {
        let c = DeviceCPCase(heads: 4, kvHeads: 1, headDim: 8, cuSeqlens: [0, 48, 128])
        let plan = try CPPlan(strategy: strategy, world: 4, heads: c.h, kvHeads: c.hkv, cuSeqlens: c.cu)
        let kernel = c.kernelReference(), fp32 = try c.fp32Reference()
        for (r, run) in runDeviceProgram(plan, c).enumerated() {
            let l = plan.layouts[r]
            _ = assertClose(run.out, c.rows(fp32.out, cols: c.h * c.d, l), .bf16, "\(strategy) rank \(r) out")
            _ = assertClose(run.lse, c.lseColumns(kernel.lse, l), .fp32Block, "\(strategy) rank \(r) lse")
        }
    }

    @Test func theDeviceByteFormulaIsChapter13sWithFourByteInputs() throws {
        for (s, w, u) in CPDeviceTests.cases {
            let plan = try CPPlan(strategy: s, world: w, heads: 8, kvHeads: 2, cuSeqlens: [0, 192], ulysses: u)
            #expect(plan.deviceForwardBytesPerRank(headDim: 16, inputBytes: 4) == plan.forwardBytesPerRank(headDim: 16))
        }
    }
}
