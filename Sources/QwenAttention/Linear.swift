// A linear layer whose weight stays where the checkpoint put it: (C_out, C_in), contiguous, read in
// place by BLAS on every call — never copied or transposed per token.
//
// What it is: y = x·Wᵀ + b for x (T, C_in). One token (decode) goes through `cblas_sgemv`, which streams W
// once; several tokens (prefill) through `cblas_sgemm`. `naive: true` is Tensor's triple-loop `linear`.
// What it is not: quantised or fused; LoRA.
import _CBLAS
import Tensor

/// `nn.Linear` with checkpoint layout: weight (C_out, C_in), optional bias (C_out).
public struct Linear: Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public init(weight: Tensor, bias: Tensor? = nil) {
        precondition(weight.rank == 2, "Linear: weight must be (C_out, C_in), got \(weight.shape)")
        precondition(bias == nil || bias!.count == weight.shape[0], "Linear: bias does not match \(weight.shape)")
        self.weight = weight
        self.bias = bias
    }

    /// x (…, C_in) → (…, C_out).
    public func callAsFunction(_ x: Tensor, naive: Bool = false) -> Tensor {
        if naive { return linear(x, weight: weight, bias: bias, naive: true) }
        let cin = inFeatures, cout = outFeatures
        precondition(x.shape.last == cin, "Linear: input \(x.shape) does not have width \(cin)")
        let rows = x.count / max(cin, 1)
        var y = [Float](repeating: 0, count: rows * cout)
        var beta: Float = 0
        if let bias {
            for r in 0..<rows { y.withUnsafeMutableBufferPointer { Y in bias.storage.withUnsafeBufferPointer { B in
                (Y.baseAddress! + r * cout).update(from: B.baseAddress!, count: cout) } } }
            beta = 1
        }
        if rows > 0 && cout > 0 && cin > 0 {
            x.storage.withUnsafeBufferPointer { X in
                weight.storage.withUnsafeBufferPointer { W in
                    y.withUnsafeMutableBufferPointer { Y in
                        if rows == 1 {
                            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(cout), Int32(cin), 1,
                                        W.baseAddress!, Int32(cin), X.baseAddress!, 1, beta, Y.baseAddress!, 1)
                        } else {
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(cout), Int32(cin),
                                        1, X.baseAddress!, Int32(cin), W.baseAddress!, Int32(cin), beta, Y.baseAddress!, Int32(cout))
                        }
                    }
                }
            }
        }
        var shape = x.shape
        shape[shape.count - 1] = cout
        return Tensor(shape: shape, storage: y)
    }
}
