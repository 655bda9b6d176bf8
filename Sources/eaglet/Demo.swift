// `eaglet demo`: the most complete path that exists so far. Until the end-to-end issue lands, it
// replays the golden values PyTorch wrote for chapter 01 (read with Eaglet's own safetensors reader),
// recomputes every op with Eaglet, and shows the relative error of each, then times one matmul both
// ways. When the tiny checkpoint lands, this becomes "the checkpoint answers a question about an image".
import ArgumentParser
import Eaglet
import Foundation

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the demo: today, Eaglet's tensor ops replayed against PyTorch's golden values.")

    @Option(help: "The Eaglet repository (default: found from the current folder or the executable).")
    var root: String?

    func run() throws {
        try reportingInputErrors {
            let repo = try locateRepository(root)
            let path = "\(repo)/Fixtures/tensor-ops/tensor-ops.safetensors"
            let f = try SafeTensorsFile(path: path)
            print("Eaglet \(eagletVersion) — OpenBLAS core: \(BLAS.coreName), threads: \(BLAS.threads)")
            print("Golden values: \(path) (\(f.tensors.count) tensors, written by PyTorch \(f.metadata["torch"] ?? "?"))\n")
            func rel(_ a: Tensor, _ b: Tensor) -> String {
                let d = zip(a.storage, b.storage).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
                return String(format: "%.2e", Double(d / max(b.maxAbs, .leastNormalMagnitude)))
            }
            let a = try f.tensor("matmul.a"), b = try f.tensor("matmul.b")
            let x = try f.tensor("rows.x"), w = try f.tensor("layer_norm.weight"), bias = try f.tensor("layer_norm.bias")
            let rows: [(String, String, Tensor, Tensor)] = [
                ("matmul (sgemm)", "\(a.shape)×\(b.shape)", matmul(a, b), try f.tensor("matmul.out")),
                ("matmul (naive)", "\(a.shape)×\(b.shape)", matmulNaive(a, b), try f.tensor("matmul.out")),
                ("softmax", "\(x.shape)", x.softmaxLast(), try f.tensor("softmax.out")),
                ("layer_norm", "\(x.shape)", x.layerNorm(weight: w, bias: bias, eps: 1e-6), try f.tensor("layer_norm.out")),
                ("gelu (tanh)", "\(x.shape)", x.map(geluTanh), try f.tensor("gelu_tanh.out")),
                ("gelu (erf)", "\(x.shape)", x.map(geluErf), try f.tensor("gelu_erf.out")),
                ("silu", "\(x.shape)", x.map(silu), try f.tensor("silu.out")),
            ]
            print("op               shape                 max|Eaglet−PyTorch| / max|PyTorch|")
            for (name, shape, mine, ref) in rows {
                print(name.padding(toLength: 17, withPad: " ", startingAt: 0) + shape.padding(toLength: 22, withPad: " ", startingAt: 0) + rel(mine, ref))
            }
            let n = 384
            let m1 = Tensor.seeded([n, n], seed: 1), m2 = Tensor.seeded([n, n], seed: 2)
            func time(_ body: () -> Tensor) -> Double {
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = body()
                return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            }
            let tn = time { matmulNaive(m1, m2) }
            let tb = min(time { matmul(m1, m2) }, time { matmul(m1, m2) })
            let flop = 2 * Double(n * n * n)
            print(String(format: "\n%d×%d matmul: naive %.2f GFLOP/s, sgemm %.1f GFLOP/s (%.0f× faster)",
                         n, n, flop / tn / 1e9, flop / tb / 1e9, tn / tb))
        }
    }
}
