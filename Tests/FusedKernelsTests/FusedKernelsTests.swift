// FusedKernels against PyTorch autograd (Fixtures/fused-kernels, from Fixtures/generate/fused_kernels.py),
// forward and backward of every operator, naive and fused; and fused vs naive on random odd shapes.
import Foundation
import FusedKernels
import QwenAttention
import Tensor
import Testing
import _TestSupport

@Suite struct FusedKernelsMatchAutograd {
    let f: Fixture
    init() throws { f = try Fixture.load("fused-kernels") }

    @Test func rmsNormForwardBackwardMatchesAutograd() throws {
        let x = try f.tensor("rmsnorm.x"), w = try f.tensor("rmsnorm.weight"), dy = try f.tensor("rmsnorm.dy")
        let n = rmsNormNaive(x, weight: w, eps: 1e-6), fu = rmsNormFused(x, weight: w, eps: 1e-6)
        assertClose(n.y, try f.tensor("rmsnorm.y"), .fp32Op, "naive y")
        assertClose(fu.y, try f.tensor("rmsnorm.y"), .fp32Op, "fused y")
        let nb = rmsNormBackwardNaive(dy: dy, x: x, weight: w, rstd: n.rstd)
        let fb = rmsNormBackwardFused(dy: dy, x: x, weight: w, rstd: fu.rstd)
        for (name, got) in [("naive", nb), ("fused", fb)] {
            assertClose(got.dx, try f.tensor("rmsnorm.dx"), .fp32Op, "\(name) dx")
            assertClose(got.dweight, try f.tensor("rmsnorm.dweight"), .fp32Op, "\(name) dweight")
        }
    }

    @Test func swigluForwardBackwardMatchesAutograd() throws {
        let g = try f.tensor("swiglu.gate"), u = try f.tensor("swiglu.up"), dy = try f.tensor("swiglu.dy")
        assertClose(swigluNaive(gate: g, up: u), try f.tensor("swiglu.out"), .fp32Op, "naive")
        assertClose(swigluFused(gate: g, up: u), try f.tensor("swiglu.out"), .fp32Op, "fused")
        let nb = swigluBackwardNaive(dOut: dy, gate: g, up: u)
        assertClose(nb.dGate, try f.tensor("swiglu.dgate"), .fp32Op, "naive dgate")
        assertClose(nb.dUp, try f.tensor("swiglu.dup"), .fp32Op, "naive dup")
        var gg = g, uu = u
        swigluBackwardFused(dOut: dy, gate: &gg, up: &uu)
        assertClose(gg, try f.tensor("swiglu.dgate"), .fp32Op, "fused dgate (in place)")
        assertClose(uu, try f.tensor("swiglu.dup"), .fp32Op, "fused dup (in place)")
    }

    @Test func mlpForwardBackwardMatchesAutograd() throws {
        let x = try f.tensor("mlp.x"), dy = try f.tensor("mlp.dy")
        let wg = try f.tensor("mlp.gate_proj"), wu = try f.tensor("mlp.up_proj"), wd = try f.tensor("mlp.down_proj")
        for (name, r) in [
            ("naive", mlpNaive(x: x, gateProj: wg, upProj: wu, downProj: wd, dy: dy)),
            ("fused", mlpFused(x: x, gateProj: wg, upProj: wu, downProj: wd, dy: dy))
        ] {
            assertClose(r.y, try f.tensor("mlp.y"), .fp32Matmul, "\(name) y")
            assertClose(r.dx, try f.tensor("mlp.dx"), .fp32Matmul, "\(name) dx")
            assertClose(r.dGateProj, try f.tensor("mlp.dgate_proj"), .fp32Matmul, "\(name) dgate_proj")
            assertClose(r.dUpProj, try f.tensor("mlp.dup_proj"), .fp32Matmul, "\(name) dup_proj")
            assertClose(r.dDownProj, try f.tensor("mlp.ddown_proj"), .fp32Matmul, "\(name) ddown_proj")
        }
    }

    @Test func ropeForwardBackwardMatchesApplyRotaryPosEmb() throws {
        let pos = try f.file.integers("rope.positions").values.map { Int($0) }
        let (cos, sin) = RotaryEmbedding(headDim: 8, theta: 10000).cosSin(positions: pos)
        let q = try f.tensor("rope.q"), k = try f.tensor("rope.k")
        let n = ropeNaive(q: q, k: k, cos: cos, sin: sin)
        assertClose(n.q, try f.tensor("rope.q_out"), .fp32Op, "naive q")
        assertClose(n.k, try f.tensor("rope.k_out"), .fp32Op, "naive k")
        var qq = q, kk = k
        ropeFused(q: &qq, k: &kk, cos: cos, sin: sin)
        assertClose(qq, try f.tensor("rope.q_out"), .fp32Op, "fused q")
        assertClose(kk, try f.tensor("rope.k_out"), .fp32Op, "fused k")
        let dqo = try f.tensor("rope.dq_out"), dko = try f.tensor("rope.dk_out")
        let nb = ropeBackwardNaive(dq: dqo, dk: dko, cos: cos, sin: sin)
        assertClose(nb.dq, try f.tensor("rope.dq"), .fp32Op, "naive dq")
        assertClose(nb.dk, try f.tensor("rope.dk"), .fp32Op, "naive dk")
        var dq = dqo, dk = dko
        ropeBackwardFused(dq: &dq, dk: &dk, cos: cos, sin: sin)
        assertClose(dq, try f.tensor("rope.dq"), .fp32Op, "fused dq")
        assertClose(dk, try f.tensor("rope.dk"), .fp32Op, "fused dk")
    }

    @Test func linearCrossEntropyMatchesAutograd() throws {
        let h = try f.tensor("lce.hidden"), w = try f.tensor("lce.weight")
        let labels = try f.file.integers("lce.labels").values.map { Int($0) }
        let lw = try f.tensor("lce_w.loss_weight").storage
        for (prefix, weights) in [("lce", nil), ("lce_w", lw)] as [(String, [Float]?)] {
            let wantLoss = try f.tensor("\(prefix).loss")
            let runs = [
                ("naive", linearCrossEntropyNaive(hidden: h, weight: w, labels: labels, lossWeights: weights)),
                (
                    "fused chunk 4",
                    linearCrossEntropyFused(hidden: h, weight: w, labels: labels, lossWeights: weights, chunkRows: 4)
                ),
                (
                    "fused chunk 1",
                    linearCrossEntropyFused(hidden: h, weight: w, labels: labels, lossWeights: weights, chunkRows: 1)
                ),
                ("fused default", linearCrossEntropyFused(hidden: h, weight: w, labels: labels, lossWeights: weights))
            ]
            for (name, r) in runs {
                assertClose(Tensor(shape: [1], storage: [r.loss]), wantLoss, .fp32Op, "\(prefix) \(name) loss")
                assertClose(r.gradInput, try f.tensor("\(prefix).dhidden"), .fp32Matmul, "\(prefix) \(name) dhidden")
                assertClose(r.gradWeight, try f.tensor("\(prefix).dweight"), .fp32Matmul, "\(prefix) \(name) dweight")
            }
        }
    }

    @Test func attentionBackwardMatchesAutograd() throws {
        for (name, off) in [("attn", AttentionOffsets.zero), ("attn_offset", AttentionOffsets(query: 4, key: 0))] {
            let q = try f.tensor("\(name).q"), k = try f.tensor("\(name).k"), v = try f.tensor("\(name).v")
            let dO = try f.tensor("\(name).dout")
            let fwd = blockwiseAttention(q: q, k: k, v: v, causal: true, offsets: off, queryBlock: 3, keyBlock: 4)
            assertClose(fwd.out, try f.tensor("\(name).out"), .fp32Matmul, "\(name) forward")
            let runs = [
                ("naive", attentionBackwardNaive(q: q, k: k, v: v, dOut: dO, causal: true, offsets: off)),
                (
                    "blockwise 3×4",
                    blockwiseAttentionBackward(
                        q: q, k: k, v: v, out: fwd.out, lse: fwd.lse, dOut: dO,
                        causal: true, offsets: off, queryBlock: 3, keyBlock: 4)
                ),
                (
                    "blockwise 1×1",
                    blockwiseAttentionBackward(
                        q: q, k: k, v: v, out: fwd.out, lse: fwd.lse, dOut: dO,
                        causal: true, offsets: off, queryBlock: 1, keyBlock: 1)
                ),
                (
                    "blockwise default",
                    blockwiseAttentionBackward(
                        q: q, k: k, v: v, out: fwd.out, lse: fwd.lse, dOut: dO,
                        causal: true, offsets: off)
                )
            ]
            for (run, g) in runs {
                assertClose(g.dq, try f.tensor("\(name).dq"), .fp32Matmul, "\(name) \(run) dq")
                assertClose(g.dk, try f.tensor("\(name).dk"), .fp32Matmul, "\(name) \(run) dk")
                assertClose(g.dv, try f.tensor("\(name).dv"), .fp32Matmul, "\(name) \(run) dv")
            }
        }
    }
}

@Suite struct FusedKernelsMatchNaive {
    @Test func fusedRMSNormAndSwiGLUMatchNaiveOnRandomInputs() {
        let x = Tensor.seeded([13, 101], seed: 1, scale: 4), w = Tensor.seeded([101], seed: 2),
            dy = Tensor.seeded([13, 101], seed: 3)
        let n = rmsNormNaive(x, weight: w, eps: 1e-5), fu = rmsNormFused(x, weight: w, eps: 1e-5)
        assertClose(fu.y, n.y, .fp32Op, "rms y")
        let nb = rmsNormBackwardNaive(dy: dy, x: x, weight: w, rstd: n.rstd)
        let fb = rmsNormBackwardFused(dy: dy, x: x, weight: w, rstd: fu.rstd)
        assertClose(fb.dx, nb.dx, .fp32Op, "rms dx"); assertClose(fb.dweight, nb.dweight, .fp32Op, "rms dw")
        let g = Tensor.seeded([17, 33], seed: 4, scale: 6), u = Tensor.seeded([17, 33], seed: 5),
            da = Tensor.seeded([17, 33], seed: 6)
        assertClose(swigluFused(gate: g, up: u), swigluNaive(gate: g, up: u), .fp32Op, "swiglu")
        let sb = swigluBackwardNaive(dOut: da, gate: g, up: u)
        var gg = g, uu = u
        swigluBackwardFused(dOut: da, gate: &gg, up: &uu)
        assertClose(gg, sb.dGate, .fp32Op, "dgate"); assertClose(uu, sb.dUp, .fp32Op, "dup")
        // Split over two threads (large enough to split: 2 × 64 K elements and more), the same elements.
        let g2 = Tensor.seeded([300, 500], seed: 9, scale: 6), u2 = Tensor.seeded([300, 500], seed: 10)
        let da2 = Tensor.seeded([300, 500], seed: 11)
        assertClose(swigluFused(gate: g2, up: u2, threads: 2), swigluNaive(gate: g2, up: u2), .fp32Op, "swiglu, 2")
        let sb2 = swigluBackwardNaive(dOut: da2, gate: g2, up: u2)
        var g3 = g2, u3 = u2
        swigluBackwardFused(dOut: da2, gate: &g3, up: &u3, threads: 2)
        assertClose(g3, sb2.dGate, .fp32Op, "dgate, 2"); assertClose(u3, sb2.dUp, .fp32Op, "dup, 2")
    }

    @Test func fusedLinearCrossEntropyMatchesNaiveAndUsesLessMemory() {
        let (t, c, v) = (67, 31, 1009)
        let h = Tensor.seeded([t, c], seed: 7), w = Tensor.seeded([v, c], seed: 8, scale: 0.3)
        let labels = (0..<t).map { $0 % 5 == 2 ? -100 : ($0 * 37) % v }
        let lw = (0..<t).map { Float(1 + $0 % 3) / 100 }
        for weights in [nil, lw] as [[Float]?] {
            let (n, nBytes) = MemoryLedger.current.measure {
                linearCrossEntropyNaive(hidden: h, weight: w, labels: labels, lossWeights: weights)
            }
            let (fu, fBytes) = MemoryLedger.current.measure {
                linearCrossEntropyFused(hidden: h, weight: w, labels: labels, lossWeights: weights, chunkRows: 8)
            }
            assertClose(Tensor(shape: [1], storage: [fu.loss]), Tensor(shape: [1], storage: [n.loss]), .fp32Op, "loss")
            assertClose(fu.gradInput, n.gradInput, .fp32Matmul, "grad_input")
            assertClose(fu.gradWeight, n.gradWeight, .fp32Matmul, "grad_weight")
            #expect(nBytes == 3 * t * v * 4, "naive holds logits, probs, dlogits")
            #expect(fBytes == 8 * v * 4, "fused holds one chunk of logits")
        }
    }

    @Test func blockwiseAttentionBackwardMatchesNaiveOnRandomOddShapes() {
        let (h, hkv, t, s, d) = (6, 2, 37, 53, 12)
        let q = Tensor.seeded([h, t, d], seed: 11), k = Tensor.seeded([hkv, s, d], seed: 12),
            v = Tensor.seeded([hkv, s, d], seed: 13)
        let dO = Tensor.seeded([h, t, d], seed: 14)
        for (causal, off) in [
            (true, AttentionOffsets(query: 16, key: 0)), (false, .zero), (true, AttentionOffsets(query: 0, key: 5))
        ] {
            let naive = attentionBackwardNaive(q: q, k: k, v: v, dOut: dO, causal: causal, offsets: off)
            let fwd = blockwiseAttention(q: q, k: k, v: v, causal: causal, offsets: off)
            for (bq, bk) in [(64, 256), (5, 7), (16, 1)] {
                let b = blockwiseAttentionBackward(
                    q: q, k: k, v: v, out: fwd.out, lse: fwd.lse, dOut: dO, causal: causal,
                    offsets: off, queryBlock: bq, keyBlock: bk)
                assertClose(b.dq, naive.dq, .fp32Matmul, "dq \(causal) \(off) \(bq)×\(bk)")
                assertClose(b.dk, naive.dk, .fp32Matmul, "dk \(causal) \(off) \(bq)×\(bk)")
                assertClose(b.dv, naive.dv, .fp32Matmul, "dv \(causal) \(off) \(bq)×\(bk)")
            }
        }
    }

    @Test func blockwiseAttentionBackwardScratchIsLinearInT() {
        // Scratch of the blockwise backward: H·T (Δ) + 2·64·256 floats; the naive one 4·T·T per head.
        let (h, d) = (2, 16)
        for t in [256, 1024] {
            let q = Tensor.seeded([h, t, d], seed: 21), k = Tensor.seeded([1, t, d], seed: 22),
                v = Tensor.seeded([1, t, d], seed: 23)
            let fwd = blockwiseAttention(q: q, k: k, v: v, causal: true)
            let (_, bytes) = MemoryLedger.current.measure {
                blockwiseAttentionBackward(q: q, k: k, v: v, out: fwd.out, lse: fwd.lse, dOut: q, causal: true)
            }
            #expect(bytes == (h * t + 2 * 64 * 256) * 4)
        }
    }
}
