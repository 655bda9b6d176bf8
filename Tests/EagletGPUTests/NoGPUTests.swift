// The GPU module where there is no GPU (CI, this repository's CPU machines): it builds, and every entry
// point fails with an error that names what was looked for. On a GPU host the same tests check that the
// device was found instead. The GPU arithmetic itself is checked by `gpu-check` on a GPU (docs/gpu.md).
import EagletGPU
import QwenAttention
import Tensor
import Foundation
import Testing
import _TestSupport

@Suite(.serialized) struct NoGPUTests {
    @Test func openingTheGPUEitherFindsOneOrNamesTheLibraryAndFolders() {
        do {
            let gpu = try GPU.open()
            #expect(!gpu.name.isEmpty && gpu.computeCapability.major >= 5, "a GPU was found: \(gpu.summary)")
        } catch let e as GPUError {
            #expect("\(e)".hasPrefix("no GPU"), "message: \(e)")
            if case let .libraryNotFound(library, searched) = e {
                #expect(library.contains("libcuda.so.1"))
                #expect(searched.contains("/usr/local/nvidia/lib64"))
                #expect("\(e)".contains("EAGLET_CUDA_LIBRARY_PATH"))
            }
        } catch {
            Issue.record("expected a GPUError, got \(error)")
        }
    }

    @Test func theEnvironmentOverrideIsSearchedFirst() {
        setenv("EAGLET_CUDA_LIBRARY_PATH", "/nonexistent/a:/nonexistent/b", 1)
        defer { unsetenv("EAGLET_CUDA_LIBRARY_PATH") }
        #expect(Array(CUDALibraries.searchFolders.prefix(2)) == ["/nonexistent/a", "/nonexistent/b"])
    }

    @Test func gpuCheckWithoutAGPUExitsOneWithOneLine() throws {
        guard eagletBinary != nil else { return } // the CLI is not built
        if (try? GPU.open()) != nil { return } // a GPU host: the no-GPU path cannot be shown here
        let r = try runEaglet([
            "gpu-check", "--model", repositoryRoot + "/Fixtures/tiny-eagle", "--prompt", "How many shapes are there?"
        ])
        let text = r.stderr
        #expect(r.reason == .exit && r.status == 1)
        #expect(text.hasPrefix("gpu-check: no GPU"), "stderr: \(text)")
        #expect(text.split(separator: "\n").count == 1, "stderr: \(text)")
    }
}

/// The cuBLAS call plan of the GPU mirror, run on the CPU by `GemmCall.emulate`: every transpose flag,
/// leading dimension, offset and stride is checked here against the CPU operators (themselves checked
/// against transformers), without a GPU.
@Suite struct GemmPlanTests {
    @Test func linearPlanEqualsRowMajorLinear() {
        let m = 5, n = 7, k = 3
        let x = Tensor.seeded([m, k], seed: 1, scale: 1), w = Tensor.seeded([n, k], seed: 2, scale: 1)
        var y = [Float](repeating: 0, count: m * n)
        GemmCall.linear(rows: m, out: n, in: k).emulate(a: w.storage, b: x.storage, c: &y)
        assertClose(
            y, linear(x, weight: w, compute: .reference).storage, .fp32Matmul, "emulated cuBLAS linear vs CPU linear")
    }

    @Test(arguments: [
        (tokens: 5, keys: 5, start: 0, causal: true), (tokens: 3, keys: 8, start: 5, causal: true),
        (tokens: 1, keys: 9, start: 8, causal: true), (tokens: 6, keys: 6, start: 0, causal: false)
    ])
    func attentionPlanEqualsCPUAttention(tokens t: Int, keys s: Int, start p0: Int, causal: Bool) {
        let h = 6, hkv = 2, d = 4
        // Token-major q (T, H, D) and k, v (S, Hkv, D), as the GPU mirror holds them.
        let q = Tensor.seeded([t, h * d], seed: 11, scale: 1), k = Tensor.seeded([s, hkv * d], seed: 12, scale: 1)
        let v = Tensor.seeded([s, hkv * d], seed: 13, scale: 1)
        let got = GPUPlanReference.attention(
            q: q.storage, qStride: h * d, k: k.storage, v: v.storage, kvStride: hkv * d,
            outStride: h * d, tokens: t, keys: s, heads: h, kvHeads: hkv, headDim: d,
            causal: causal, start: p0)
        // The CPU kernel takes head-major (H, T, D) / (Hkv, S, D).
        let ref = attentionNaive(
            q: q.reshaped([t, h, d]).permuted([1, 0, 2]), k: k.reshaped([s, hkv, d]).permuted([1, 0, 2]),
            v: v.reshaped([s, hkv, d]).permuted([1, 0, 2]), causal: causal,
            offsets: AttentionOffsets(query: p0, key: 0)
        ).out
        assertClose(
            Tensor(shape: [t, h * d], storage: got), ref.permuted([1, 0, 2]).reshaped([t, h * d]), .fp32Op,
            "emulated cuBLAS attention vs CPU attention (T \(t), S \(s), p0 \(p0))")
    }

    /// The flash kernels' plan (FlashPlan: blocks of 128 queries, tiles of 64 keys — 128 for the Hopper kernel —,
    /// online softmax in the log2 domain, bf16 P and output) against the CPU's written-out attention and its
    /// log-sum-exp. The inputs are
    /// rounded to bf16 first, as the device holds them; q, k and v are column slices of one fused (T, ·) buffer
    /// in the last case, as the SigLIP layer reads them.
    @Test(arguments: [
        (tokens: 200, keys: 200, start: 0, causal: true, heads: 4, kvHeads: 2, fused: false, tileKeys: 64),
        (tokens: 70, keys: 300, start: 230, causal: true, heads: 4, kvHeads: 1, fused: false, tileKeys: 64),
        (tokens: 1, keys: 130, start: 129, causal: true, heads: 2, kvHeads: 2, fused: false, tileKeys: 64),
        (tokens: 150, keys: 150, start: 0, causal: false, heads: 3, kvHeads: 3, fused: true, tileKeys: 64),
        (tokens: 300, keys: 300, start: 0, causal: true, heads: 4, kvHeads: 2, fused: false, tileKeys: 128),
        (tokens: 70, keys: 300, start: 230, causal: true, heads: 4, kvHeads: 1, fused: false, tileKeys: 128)
    ])
    func flashPlanEqualsCPUAttention(
        tokens t: Int, keys s: Int, start p0: Int, causal: Bool, heads h: Int, kvHeads hkv: Int, fused: Bool,
        tileKeys: Int
    ) {
        let d = 16
        let q = Tensor.seeded([t, h * d], seed: 21, scale: 2).roundedToBF16()
        let k = Tensor.seeded([s, hkv * d], seed: 22, scale: 2).roundedToBF16()
        let v = Tensor.seeded([s, hkv * d], seed: 23, scale: 1).roundedToBF16()
        var plan: (out: [Float], lse: [Float])
        if fused {
            // One (T, 3·H·D) buffer holding [q | k | v] per row, read with row stride 3·H·D.
            let w = h * d
            var rows = [Float](repeating: 0, count: t * 3 * w)
            for r in 0..<t {
                for c in 0..<w {
                    rows[r * 3 * w + c] = q.storage[r * w + c]
                    rows[r * 3 * w + w + c] = k.storage[r * w + c]
                    rows[r * 3 * w + 2 * w + c] = v.storage[r * w + c]
                }
            }
            plan = FlashPlan.attention(
                q: rows, qStride: 3 * w, k: Array(rows[w...]), v: Array(rows[(2 * w)...]), kvStride: 3 * w, tokens: t,
                keys: s, heads: h, kvHeads: hkv, headDim: d, causal: causal, start: p0, tileKeys: tileKeys)
        } else {
            plan = FlashPlan.attention(
                q: q.storage, qStride: h * d, k: k.storage, v: v.storage, kvStride: hkv * d, tokens: t, keys: s,
                heads: h, kvHeads: hkv, headDim: d, causal: causal, start: p0, tileKeys: tileKeys)
        }
        let ref = attentionNaive(
            q: q.reshaped([t, h, d]).permuted([1, 0, 2]), k: k.reshaped([s, hkv, d]).permuted([1, 0, 2]),
            v: v.reshaped([s, hkv, d]).permuted([1, 0, 2]), causal: causal,
            offsets: AttentionOffsets(query: p0, key: 0))
        assertClose(
            Tensor(shape: [t, h * d], storage: plan.out), ref.out.permuted([1, 0, 2]).reshaped([t, h * d]), .bf16,
            "flash plan vs CPU attention (T \(t), S \(s), p0 \(p0), BC \(tileKeys))")
        assertClose(
            Tensor(shape: [h, t], storage: plan.lse), ref.lse.reshaped([h, t]), .fp32Op,
            "flash plan LSE vs CPU attention's (T \(t), S \(s), p0 \(p0))")
    }

    /// A causal block loads only the key tiles its queries can see; a bidirectional block loads all of them.
    @Test func flashPlanSkipsTilesPastTheDiagonal() {
        #expect(FlashPlan.tiles(blockStart: 0, keys: 1000, causal: true, start: 0) == 2)
        #expect(FlashPlan.tiles(blockStart: 128, keys: 1000, causal: true, start: 0) == 4)
        #expect(FlashPlan.tiles(blockStart: 0, keys: 1000, causal: false, start: 0) == 16)
        #expect(FlashPlan.tiles(blockStart: 0, keys: 777, causal: true, start: 776) == 13)
        #expect(FlashPlan.tiles(blockStart: 128, keys: 1000, causal: true, start: 0, tileKeys: 128) == 2)
    }
}
