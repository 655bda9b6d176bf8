// Tensor ops against PyTorch's golden values (Fixtures/tensor-ops, from Fixtures/generate/tensor_ops.py).
import Testing
import Tensor
import _TestSupport

@Suite struct TensorMatchesPyTorch {
    let f: Fixture
    init() throws { f = try Fixture.load("tensor-ops") }

    @Test func matmulMatchesPyTorch() throws {
        let a = try f.tensor("matmul.a"), b = try f.tensor("matmul.b"), c = try f.tensor("matmul.c")
        assertClose(matmul(a, b), try f.tensor("matmul.out"), .fp32Matmul, "sgemm")
        assertClose(matmulNaive(a, b), try f.tensor("matmul.out"), .fp32Matmul, "naive")
        assertClose(matmul(a, c, transposeB: true), try f.tensor("matmul_tb.out"), .fp32Matmul, "sgemm a·cᵀ")
        assertClose(matmulNaive(a, c, transposeB: true), try f.tensor("matmul_tb.out"), .fp32Matmul, "naive a·cᵀ")
    }

    @Test func batchedMatmulMatchesTorchBmm() throws {
        let a = try f.tensor("bmm.a"), b = try f.tensor("bmm.b")
        assertClose(batchedMatmul(a, b), try f.tensor("bmm.out"), .fp32Matmul)
        assertClose(batchedMatmul(a, b, compute: .reference), try f.tensor("bmm.out"), .fp32Matmul)
    }

    @Test func linearMatchesFLinear() throws {
        let x = try f.tensor("linear.x"), w = try f.tensor("linear.weight"), b = try f.tensor("linear.bias")
        let y = linear(x, weight: w, bias: b)
        #expect(y.shape == [2, 5, 13])
        assertClose(y, try f.tensor("linear.out"), .fp32Matmul)
        assertClose(linear(x, weight: w, bias: b, compute: .reference), try f.tensor("linear.out"), .fp32Matmul)
    }

    @Test func rowOpsMatchPyTorch() throws {
        let x = try f.tensor("rows.x"), w = try f.tensor("layer_norm.weight"), b = try f.tensor("layer_norm.bias")
        assertClose(x.softmaxLast(), try f.tensor("softmax.out"), .fp32Op, "softmax")
        assertClose(x.layerNorm(weight: w, bias: b, eps: 1e-6), try f.tensor("layer_norm.out"), .fp32Op, "layer_norm")
        assertClose(x.rmsNorm(weight: w, eps: 1e-6), try f.tensor("rms_norm.out"), .fp32Op, "rms_norm")
        assertClose(x.map(geluTanh), try f.tensor("gelu_tanh.out"), .fp32Op, "gelu tanh")
        assertClose(x.map(geluErf), try f.tensor("gelu_erf.out"), .fp32Op, "gelu erf")
        assertClose(x.map(silu), try f.tensor("silu.out"), .fp32Op, "silu")
    }

    @Test func permuteMatchesTorchPermute() throws {
        assertClose(try f.tensor("permute.x").permuted([0, 2, 1, 3]), try f.tensor("permute.out"), .exact)
    }

    @Test func dtypeRoundTripsMatchTorch() throws {
        let x = try f.tensor("dtype.x")
        assertClose(x.roundedToBF16(), try f.tensor("dtype.bf16_roundtrip"), .exact, "bf16")
        assertClose(x.roundedToF16(), try f.tensor("dtype.f16_roundtrip"), .exact, "f16")
    }

    @Test func seededGeneratorMatchesPython() throws {
        let (_, hi) = try f.file.integers("seeded.raw_hi")
        let (_, lo) = try f.file.integers("seeded.raw_lo")
        var rng = SplitMix64(seed: 42)
        for i in 0..<8 {
            let v = rng.next()
            #expect(Int64(v >> 32) == hi[i] && Int64(v & 0xFFFF_FFFF) == lo[i], "draw \(i)")
        }
        assertClose(Tensor.seeded([3, 5], seed: 7, scale: 0.02), try f.tensor("seeded.t_3x5_seed7_scale0.02"), .exact)
    }
}

@Suite struct TensorNaiveVersusFast {
    @Test(arguments: [(1, 1, 1), (3, 5, 7), (17, 1, 33), (64, 65, 63), (129, 31, 2)])
    func sgemmMatchesNaiveOnOddShapes(m: Int, k: Int, n: Int) {
        let a = Tensor.seeded([m, k], seed: UInt64(m * 1000 + k)), b = Tensor.seeded([k, n], seed: UInt64(n + 7))
        assertClose(matmul(a, b), matmulNaive(a, b), .fp32Matmul, "\(m)×\(k)×\(n)")
        let bt = b.transposedLast2()
        assertClose(matmul(a, bt, transposeB: true), matmulNaive(a, b), .fp32Matmul, "transposed B")
        assertClose(matmulNaive(a, b, threads: 3), matmulNaive(a, b), .exact, "threaded naive splits rows only")
    }

    @Test func layoutOpsAreInverses() {
        let x = Tensor.seeded([2, 3, 4, 5], seed: 3)
        #expect(x.permuted([0, 2, 1, 3]).permuted([0, 2, 1, 3]) == x)
        #expect(x.transposedLast2().transposedLast2() == x)
        let parts = [x.slice(dim: 2, 0..<1), x.slice(dim: 2, 1..<4)]
        #expect(Tensor.concatenate(parts, dim: 2) == x)
        #expect(x.reshaped([6, -1]).shape == [6, 20])
    }

    @Test func softmaxOfFullyMaskedRowIsZero() {
        let t = Tensor(shape: [1, 3], storage: [-.infinity, -.infinity, -.infinity]).softmaxLast()
        #expect(t.storage == [0, 0, 0])
    }
}
