// RoPE and attention against transformers / a float64 reference (Fixtures/qwen2-lm, from
// Fixtures/generate/qwen2_lm.py), and the blockwise path against the naive one.
import Foundation
import QwenAttention
import Tensor
import Testing
import _TestSupport

@Suite struct QwenAttentionMatchesReference {
    let f: Fixture
    init() throws { f = try Fixture.load("qwen2-lm") }

    @Test func rotaryCosSinMatchTransformers() throws {
        let pos = try f.file.integers("rope.positions").values.map { Int($0) }
        let rope = RotaryEmbedding(headDim: 8, theta: 10000)
        let (cos, sin) = rope.cosSin(positions: pos)
        // fp32 angles up to 40000 rad: cos/sin of the same fp32 angle agree to a few ulp of the angle.
        assertClose(cos, try f.tensor("rope.cos"), .fp32Op, "cos")
        assertClose(sin, try f.tensor("rope.sin"), .fp32Op, "sin")
    }

    @Test func rotaryApplyMatchesApplyRotaryPosEmb() throws {
        let pos = try f.file.integers("rope.positions").values.map { Int($0) }
        let rope = RotaryEmbedding(headDim: 8, theta: 10000)
        let (cos, sin) = rope.cosSin(positions: pos)
        let x = try f.tensor("rope.x") // (H, T, D) = (3, 7, 8)
        let want = try f.tensor("rope.out")
        assertClose(rope.applyNaive(x, cos: cos, sin: sin), want, .fp32Op, "naive rotate_half")
        var tokenMajor = x.permuted([1, 0, 2]).reshaped([7, 24])
        rope.apply(&tokenMajor, heads: 3, cos: cos, sin: sin)
        assertClose(tokenMajor.reshaped([7, 3, 8]).permuted([1, 0, 2]), want, .fp32Op, "in-place")
    }

    @Test func causalGQAAttentionMatchesReference() throws {
        let q = try f.tensor("attn.q"), k = try f.tensor("attn.k"), v = try f.tensor("attn.v")
        let out = try f.tensor("attn.out"), lse = try f.tensor("attn.lse")
        let naive = attentionNaive(q: q, k: k, v: v, causal: true)
        assertClose(naive.out, out, .fp32Matmul, "naive out"); assertClose(naive.lse, lse, .fp32Op, "naive lse")
        for (bq, bk) in [(64, 256), (7, 5), (1, 1), (16, 45)] {
            let b = blockwiseAttention(q: q, k: k, v: v, causal: true, queryBlock: bq, keyBlock: bk)
            assertClose(b.out, out, .fp32Matmul, "blockwise out \(bq)×\(bk)")
            assertClose(b.lse, lse, .fp32Op, "blockwise lse \(bq)×\(bk)")
        }
    }

    @Test func offsetQueriesMatchReference() throws {
        let q = try f.tensor("attn_offset.q"), k = try f.tensor("attn.k"), v = try f.tensor("attn.v")
        let off = AttentionOffsets(query: 34, key: 0)
        let naive = attentionNaive(q: q, k: k, v: v, causal: true, offsets: off)
        assertClose(naive.out, try f.tensor("attn_offset.out"), .fp32Matmul, "naive")
        assertClose(naive.lse, try f.tensor("attn_offset.lse"), .fp32Op, "naive lse")
        for (bq, bk) in [(64, 256), (3, 8), (1, 7)] {
            let b = blockwiseAttention(q: q, k: k, v: v, causal: true, offsets: off, queryBlock: bq, keyBlock: bk)
            assertClose(b.out, try f.tensor("attn_offset.out"), .fp32Matmul, "blockwise \(bq)×\(bk)")
            assertClose(b.lse, try f.tensor("attn_offset.lse"), .fp32Op, "blockwise lse \(bq)×\(bk)")
        }
    }

    @Test func blockwiseMatchesNaiveOnRandomOddShapes() {
        // Extra check beside the golden ones: odd sizes, non-causal, key offsets that hide whole rows.
        for (h, hkv, t, s, d, causal, off) in [
            (6, 3, 13, 29, 6, true, AttentionOffsets(query: 16, key: 0)),
            (4, 1, 17, 17, 10, false, AttentionOffsets.zero),
            (2, 2, 9, 11, 4, true, AttentionOffsets(query: 0, key: 3))
        ] {
            let q = Tensor.seeded([h, t, d], seed: 1), k = Tensor.seeded([hkv, s, d], seed: 2),
                v = Tensor.seeded([hkv, s, d], seed: 3)
            let n = attentionNaive(q: q, k: k, v: v, causal: causal, offsets: off)
            let b = blockwiseAttention(q: q, k: k, v: v, causal: causal, offsets: off, queryBlock: 4, keyBlock: 5)
            assertClose(b.out, n.out, .fp32Matmul, "out h\(h) t\(t) s\(s)")
            assertClose(b.lse, n.lse, .fp32Op, "lse h\(h) t\(t) s\(s)")
        }
    }

    @Test func kvCacheGrowsAndKeepsRows() {
        var c = KVCacheLayer(kvHeads: 2, headDim: 3, capacity: 2)
        let k = Tensor.seeded([5, 6], seed: 9), v = Tensor.seeded([5, 6], seed: 10)
        c.append(k: k.slice(dim: 0, 0..<3), v: v.slice(dim: 0, 0..<3))
        c.append(k: k.slice(dim: 0, 3..<5), v: v.slice(dim: 0, 3..<5))
        #expect(c.count == 5 && c.capacity >= 5)
        let (kd, vd) = c.dense()
        assertClose(kd, k.reshaped([5, 2, 3]).permuted([1, 0, 2]), .exact, "keys")
        assertClose(vd, v.reshaped([5, 2, 3]).permuted([1, 0, 2]), .exact, "values")
    }

    @Test func linearGemvAndSgemmPathsMatchNaive() {
        // Odd widths (not multiples of the SIMD width) and enough rows to split over threads.
        for (cout, cin) in [(301, 45), (7, 3), (130, 67)] {
            let w = Tensor.seeded([cout, cin], seed: 21), b = Tensor.seeded([cout], seed: 22)
            let layer = Linear(weight: w, bias: b)
            for t in [1, 5] {
                let x = Tensor.seeded([t, cin], seed: 23)
                assertClose(layer(x), layer(x, compute: .reference), .fp32Matmul, "\(t) tokens, \(cout)×\(cin)")
            }
        }
    }

    /// Peak resident memory of this process so far (VmHWM), bytes.
    static func peakRSS() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
        }
        return 0
    }

    /// Peak RSS of a child `eaglet-bench _case lm --variant attention-blockwise --size T` (a process of its
    /// own, so tests running beside this one cannot raise it), or nil when the binary is not built.
    static func childAttentionPeak(_ t: Int) throws -> Int? {
        let bench = "\(repositoryRoot)/.build/release/eaglet-bench"
        guard FileManager.default.isExecutableFile(atPath: bench) else { return nil }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bench)
        p.arguments = ["_case", "lm", "--variant", "attention-blockwise", "--size", String(t), "--threads", "1"]
        p.environment = ["OPENBLAS_NUM_THREADS": "1"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        return obj?["peakRSSBytes"] as? Int
    }

    @Test func blockwiseAttentionAt16KTokensStaysFarBelowTheScoreMatrix() throws {
        // T = 16384, 2 query heads over 1 kv head, D = 64: the naive path would hold 2 × 16384² float scores
        // (2 GiB). Run in a child process each (so nothing else in this test run can raise the peak), the
        // blockwise path at 16K may use at most 128 MiB more than at 256 tokens: inputs and outputs are 12 MiB.
        guard let small = try Self.childAttentionPeak(256), let large = try Self.childAttentionPeak(16384) else {
            print("skipped: .build/release/eaglet-bench is not built")
            return
        }
        #expect(large - small < 128 << 20, "peak grew by \(large - small) bytes from T = 256 to T = 16384")
    }
}
