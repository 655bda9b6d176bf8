// AdamW, the learning-rate schedule and clipping by global norm, as PyTorch's `torch.optim.AdamW` (single-tensor
// path), `clip_grad_norm_` and a linear-warmup cosine schedule compute them (docs/spec.md §11.3).
//
// For a parameter p with gradient g at its own step t = 1, 2, … (a parameter that got no gradient in a step is left
// alone, its step count included):
//     p ← p·(1 − lr·λ)                      λ = weight decay for matrices (rank ≥ 2), 0 for vectors
//     m ← m + (g − m)·(1 − β1)              v ← β2·v + (1 − β2)·g²
//     p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
// Schedule for step k = 0 … K − 1 with warmup W and base η: k < W → η·(k + 1)/W; cosine → η·½(1 + cos(π(k − W)/(K − W))).
// Clipping: G = √(Σ over every gradient of Σ g²); when G > c every gradient is scaled by c/(G + 10⁻⁶).
// The scalars (bias corrections, step size) are computed in Double and applied in fp32, as PyTorch does.
import Foundation
import Tensor

public struct AdamW: Sendable {
    public var lr: Double
    public var beta1: Double, beta2: Double
    public var eps: Double
    public var weightDecay: Double
    /// First and second moments and the step count of every parameter that has had a gradient.
    public var m: [String: Tensor] = [:]
    public var v: [String: Tensor] = [:]
    public var steps: [String: Int] = [:]

    public init(lr: Double, betas: (Double, Double) = (0.9, 0.95), eps: Double = 1e-8, weightDecay: Double = 0) {
        self.lr = lr; beta1 = betas.0; beta2 = betas.1; self.eps = eps; self.weightDecay = weightDecay
    }

    /// One update of every parameter in `grads` at learning rate `lr`.
    public mutating func step(_ params: inout [String: Tensor], grads: Gradients, lr: Double) {
        for key in grads.keys.sorted() {
            guard let g = grads[key], var p = params[key] else { continue }
            let t = (steps[key] ?? 0) + 1
            steps[key] = t
            var mk = m[key] ?? Tensor(shape: p.shape), vk = v[key] ?? Tensor(shape: p.shape)
            let decay = Float(1 - lr * (p.rank >= 2 ? weightDecay : 0))
            let b2 = Float(beta2), oneMinusB1 = Float(1 - beta1), oneMinusB2 = Float(1 - beta2)
            let stepSize = Float(lr / (1 - pow(beta1, Double(t))))
            let bc2Sqrt = Float((1 - pow(beta2, Double(t))).squareRoot()), e = Float(eps)
            p.withUnsafeMutableStorage { P in
                mk.withUnsafeMutableStorage { M in
                    vk.withUnsafeMutableStorage { V in
                        g.storage.withUnsafeBufferPointer { G in
                            for i in 0..<P.count {
                                P[i] *= decay
                                // torch.lerp with weight 1 − β1 < ½: start + weight·(end − start)
                                M[i] = M[i] + oneMinusB1 * (G[i] - M[i])
                                V[i] = V[i] * b2 + oneMinusB2 * G[i] * G[i]
                                let denom = V[i].squareRoot() / bc2Sqrt + e
                                P[i] = P[i] - stepSize * (M[i] / denom)
                            }
                        }
                    }
                }
            }
            params[key] = p; m[key] = mk; v[key] = vk
        }
    }
}

/// The global L2 norm of every gradient, and (when `clip` is given and the norm exceeds it) the gradients scaled by
/// clip/(norm + 10⁻⁶).
public func clipByGlobalNorm(_ grads: inout Gradients, clip: Double?) -> Double {
    var total = 0.0
    for key in grads.keys.sorted() {
        var s: Float = 0 // per tensor in fp32, then the norm of the norms, as torch.linalg.vector_norm
        for x in grads[key]!.storage { s += x * x }
        total += Double(s)
    }
    let norm = total.squareRoot()
    if let c = clip, norm > c {
        let k = Float(c / (norm + 1e-6))
        for key in grads.keys { grads[key] = grads[key]!.map { $0 * k } }
    }
    return norm
}

/// The learning rate of step k (0-based) of K.
public enum LRSchedule: String, Sendable, CaseIterable {
    case constant, cosine

    public func lr(step k: Int, of K: Int, base: Double, warmup W: Int) -> Double {
        if k < W { return base * Double(k + 1) / Double(W) }
        switch self {
        case .constant: return base
        case .cosine: return base * 0.5 * (1 + cos(Double.pi * Double(k - W) / Double(max(1, K - W))))
        }
    }
}
