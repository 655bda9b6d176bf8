// q8_0 weights: the quantization against the bytes `gguf` (the numpy twin of llama.cpp's reference) writes
// (Fixtures/q8_0, edge cases included: ties, zero blocks, subnormal scales), the fp16 conversions against Swift's
// own Float16, the int8 dot kernel on every vector path against a float64 product and its reference loop, and a
// q8_0 Linear against the fp32 Linear of the same (dequantized) weights.
import Foundation
import QwenAttention
import Tensor
import Testing
import _CKernels
import _TestSupport

@Suite struct Q8Weights {
    /// Every half widens exactly as Swift's Float16 does; fp32 → half rounds as Float16(x) does, on the edge
    /// values and 200 000 random bit patterns.
    @Test func halfConversionsAgreeWithSwiftFloat16() {
        for h in 0...UInt16.max {
            let want = Float(Float16(bitPattern: h)), got = eaglet_f16_to_f32(h)
            #expect(want.isNaN ? got.isNaN : got.bitPattern == want.bitPattern, "half \(h)")
        }
        var rng = SplitMix64(seed: 7)
        let edges: [Float] = [
            0, -0, 65504, 65519.99, 65520, -65520, 1e-8, 2.98e-8, 2.99e-8, 5.96e-8, 6.1e-5, 6.103515625e-05,
            6.1035156e-05 * 0.99, .infinity, -.infinity, 1 / 3, 1e-45, 3.0517578e-05
        ]
        let random = (0..<200_000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        for x in edges + random where !x.isNaN {
            #expect(eaglet_f32_to_f16(x) == Float16(x).bitPattern, "\(x) (bits \(x.bitPattern))")
        }
    }

    /// The blocks equal gguf's bytes, on every vector path, and widen to gguf's dequantized values.
    @Test(arguments: ["plain", "avx2", "avx512"])
    func quantizationMatchesGGUFByteForByte(path: String) throws {
        let used = KernelPath.use(path)
        defer { KernelPath.use("avx512") }
        let f = try Fixture.load("q8_0")
        let w = try f.tensor("w"), want = try f.file.integers("blocks").values.map { UInt8($0) }
        let m = Q8Matrix(quantizing: w, threads: 2)
        let got = (0..<m.rows).flatMap { r in (0..<(m.cols / 32)).flatMap { m.block(r, $0) } }
        let firstDifference = zip(got, want).enumerated().first { $0.1.0 != $0.1.1 }?.offset
        #expect(got == want, "\(used): first difference at byte \(firstDifference ?? -1)")
        assertClose(m.widened(), try f.tensor("dequantized"), .exact, "\(used) dequantized")
        // The activation: the same q values, the scale kept in fp32.
        let x = try f.tensor("x"), xb = try f.file.integers("x_blocks").values
        let a = x.storage.withUnsafeBufferPointer { Q8Activation($0.baseAddress!, count: x.count) }
        for b in 0..<(x.count / 32) {
            #expect(
                a.q[(32 * b)..<(32 * b + 32)].map(Int64.init)
                    == xb[(34 * b + 2)..<(34 * b + 34)].map { Int64(Int8(truncatingIfNeeded: $0)) })
        }
        let deq = (0..<x.count).map { Float(a.q[$0]) * a.d[$0 / 32] }
        assertClose(Tensor(shape: [x.count], storage: deq), try f.tensor("x_dequantized"), .exact, "\(used) x")
    }

    /// The dot kernel on every path against the float64 product of the dequantized operands, and against its
    /// reference loop; then on odd row counts and widths with a tail block, accumulating.
    @Test(arguments: ["plain", "avx2", "avx512"])
    func gemvMatchesTheFloat64Product(path: String) throws {
        let used = KernelPath.use(path)
        defer { KernelPath.use("avx512") }
        let f = try Fixture.load("q8_0")
        let m = Q8Matrix(quantizing: try f.tensor("w")), x = try f.tensor("x")
        var y = [Float](repeating: 0, count: m.rows)
        x.storage.withUnsafeBufferPointer { X in
            y.withUnsafeMutableBufferPointer {
                gemvRowsQ8(m, x: X.baseAddress!, y: $0.baseAddress!, accumulate: false, threads: 2)
            }
        }
        assertClose(Tensor(shape: [m.rows], storage: y), try f.tensor("y"), .fp32Matmul, "\(used) vs float64")
        for (rows, cols) in [(37, 96), (130, 1056), (64, 32), (5, 4000), (70, 288), (3, 3584)] {
            let m = Q8Matrix(quantizing: .seeded([rows, cols], seed: UInt64(rows), scale: 0.5))
            let x = Tensor.seeded([cols], seed: 9, scale: 2).storage
            var y = [Float](repeating: 1, count: rows)
            x.withUnsafeBufferPointer { X in
                y.withUnsafeMutableBufferPointer {
                    gemvRowsQ8(m, x: X.baseAddress!, y: $0.baseAddress!, accumulate: true, threads: 2)
                }
            }
            let want = gemvQ8Reference(m, x.withUnsafeBufferPointer { Q8Activation($0.baseAddress!, count: cols) })
            assertClose(
                Tensor(shape: [rows], storage: y), Tensor(shape: [rows], storage: want.map { $0 + 1 }), .fp32Matmul,
                "\(used) \(rows)×\(cols)")
        }
    }

    /// A q8_0 Linear: several rows go through widened panels + sgemm and equal the fp32 Linear of the dequantized
    /// weight (the same numbers); one row also quantizes x, so it is held to the q8_0 row against the fp32 product.
    @Test(arguments: [1, 5, 300])
    func q8LinearMatchesTheDequantizedOne(rows: Int) {
        let w = Tensor.seeded([300, 96], seed: 3, scale: 0.3), b = Tensor.seeded([300], seed: 4)
        let x = Tensor.seeded([rows, 96], seed: 5, scale: 1.5) // outputs of about unit scale (rms ≈ 1.5)
        let q = Q8Matrix(quantizing: w)
        for bias in [nil, b] {
            let deq = Linear(weight: q.widened(), bias: bias), q8 = Linear(stored: .q8_0(q), bias: bias)
            assertClose(
                q8(x, compute: .fast(threads: 2)), deq(x), rows == 1 ? .q8_0 : .fp32Block, "\(rows) rows")
            assertClose(q8(x, compute: .reference), deq(x, compute: .reference), .exact, "\(rows) rows, reference")
            var h = Tensor.seeded([rows, 300], seed: 6), g = h
            q8(x, addingTo: &h); deq(x, addingTo: &g)
            assertClose(h, g, rows == 1 ? .q8_0 : .fp32Block, "\(rows) rows, accumulated")
        }
    }
}
