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
}
