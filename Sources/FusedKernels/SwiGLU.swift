// SwiGLU activation and the whole Qwen2 MLP, forward and backward, naive and fused (docs/spec.md §8.1: Liger's
// LigerSwiGLUMLP).
//
// Activation: a = silu(g) · u with silu(g) = g · σ(g). Backward, given da:
//     du = da · silu(g),   dg = da · u · σ(g) · (1 + g · (1 − σ(g))).
// MLP (no bias, as Qwen2): y = (silu(x Wgᵀ) · (x Wuᵀ)) Wdᵀ with x (T, C), Wg and Wu (I, C), Wd (C, I).
// Backward: dWd = dyᵀ a, da = dy Wd, (dg, du) as above, dx = dg Wg + du Wu, dWg = dgᵀ x, dWu = duᵀ x.
//
// * naive: σ(g), silu(g), their product and, in the backward, σ, silu, silu' and each gradient live in
//   their own (T, I) buffers.
// * fused activation: one loop, σ computed once per element; the backward recomputes σ instead of
//   storing it (Liger) and writes dg and du over g and u in place.
// * fused MLP: keeps only g, u (the forward's saved activations) and one (T, I) buffer that holds a,
//   then — once dWd is taken — is reused for da; the fused activation backward overwrites g, u with
//   dg, du. Three (T, I) buffers instead of nine.
// The fused activation and its backward use the vectorised `fastExp` and may split the elements over `threads`
// (training's step passes its own; the default is one).
// Not here: bias, tensor parallelism.
import Dispatch
import Foundation
import Tensor

@inline(__always) func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }

/// silu(gate) · up, three materialised passes (σ, silu, product).
public func swigluNaive(gate: Tensor, up: Tensor) -> Tensor {
    precondition(gate.shape == up.shape, "swiglu: gate \(gate.shape) vs up \(up.shape)")
    let n = gate.count
    let sig = Scratch(n), s = Scratch(n)
    for i in 0..<n { sig[i] = sigmoid(gate.storage[i]) }
    for i in 0..<n { s[i] = gate.storage[i] * sig[i] }
    return Tensor(shape: gate.shape) { i in s[i] * up.storage[i] }
}

/// (dgate, dup) of silu(gate) · up, every intermediate materialised.
public func swigluBackwardNaive(dOut: Tensor, gate: Tensor, up: Tensor) -> (dGate: Tensor, dUp: Tensor) {
    let n = gate.count
    let sig = Scratch(n), s = Scratch(n), ds = Scratch(n)
    for i in 0..<n { sig[i] = sigmoid(gate.storage[i]) }
    for i in 0..<n { s[i] = gate.storage[i] * sig[i] }
    for i in 0..<n { ds[i] = sig[i] * (1 + gate.storage[i] * (1 - sig[i])) } // silu'
    let dUp = Tensor(shape: gate.shape) { i in dOut.storage[i] * s[i] }
    let dGate = Tensor(shape: gate.shape) { i in dOut.storage[i] * up.storage[i] * ds[i] }
    return (dGate, dUp)
}

/// silu(gate) · up in one loop, the elements split over `threads`.
public func swigluFused(gate: Tensor, up: Tensor, threads: Int = 1) -> Tensor {
    precondition(gate.shape == up.shape, "swiglu: gate \(gate.shape) vs up \(up.shape)")
    return withPtr(gate) { G in
        withPtr(up) { U in
            makeTensor(gate.shape) { A in
                forEachChunk(gate.count, threads: threads) { r in
                    swigluForwardKernel(G + r.lowerBound, U + r.lowerBound, A + r.lowerBound, r.count)
                }
            }
        }
    }
}

/// In-place fused backward: overwrites `gate` with dgate and `up` with dup, recomputing σ(gate); the elements split
/// over `threads`.
public func swigluBackwardFused(dOut: Tensor, gate: inout Tensor, up: inout Tensor, threads: Int = 1) {
    precondition(
        gate.shape == up.shape && dOut.shape == gate.shape,
        "swiglu backward: shapes \(dOut.shape), \(gate.shape), \(up.shape)")
    withPtr(dOut) { D in
        gate.withUnsafeMutableStorage { G in
            up.withUnsafeMutableStorage { U in
                let g = G.baseAddress!, u = U.baseAddress!
                forEachChunk(G.count, threads: threads) { r in
                    swigluBackwardKernel(D + r.lowerBound, g + r.lowerBound, u + r.lowerBound, r.count)
                }
            }
        }
    }
}

@inline(__always)
func swigluForwardKernel(
    _ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ a: UnsafeMutablePointer<Float>, _ n: Int
) {
    for i in 0..<n { let x = g[i]; a[i] = x / (1 + fastExp(-x)) * u[i] }
}

/// da → (dg, du) written over (g, u).
@inline(__always)
func swigluBackwardKernel(
    _ da: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ u: UnsafeMutablePointer<Float>, _ n: Int
) {
    for i in 0..<n {
        let x = g[i], sg = 1 / (1 + fastExp(-x)), d = da[i]
        g[i] = d * u[i] * sg * (1 + x * (1 - sg))
        u[i] = d * x * sg
    }
}

/// Runs `body` on `threads` contiguous chunks of 0..<n concurrently (one chunk below 64 K elements, or one thread).
func forEachChunk(_ n: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    let parts = max(1, min(threads, n / (1 << 16)))
    if parts == 1 { body(0..<n); return }
    // nonisolated(unsafe): each chunk reads and writes only its own elements.
    nonisolated(unsafe) let disjoint = body
    DispatchQueue.concurrentPerform(iterations: parts) { p in disjoint((n * p / parts)..<(n * (p + 1) / parts)) }
}

/// Output and all gradients of the MLP for one upstream gradient dy.
public struct MLPGradients: Sendable {
    public var y: Tensor
    public var dx: Tensor
    public var dGateProj: Tensor
    public var dUpProj: Tensor
    public var dDownProj: Tensor
}

private func checkMLP(_ x: Tensor, _ wg: Tensor, _ wu: Tensor, _ wd: Tensor, _ dy: Tensor) -> (Int, Int, Int) {
    let (t, c, i) = (x.shape[0], x.shape[1], wg.shape[0])
    precondition(
        x.rank == 2 && wg.shape == [i, c] && wu.shape == [i, c] && wd.shape == [c, i] && dy.shape == [t, c],
        "mlp: x \(x.shape), gate \(wg.shape), up \(wu.shape), down \(wd.shape), dy \(dy.shape)")
    return (t, c, i)
}

/// Forward and backward of the MLP with every intermediate in its own buffer (nine (T, I) buffers).
public func mlpNaive(x: Tensor, gateProj wg: Tensor, upProj wu: Tensor, downProj wd: Tensor, dy: Tensor) -> MLPGradients
{
    let (t, c, i) = checkMLP(x, wg, wu, wd, dy)
    let n = t * i
    let g = Scratch(n), u = Scratch(n), sig = Scratch(n), s = Scratch(n), a = Scratch(n)
    let da = Scratch(n), ds = Scratch(n), dg = Scratch(n), du = Scratch(n)
    var out = MLPGradients(
        y: Tensor(shape: [t, c]), dx: Tensor(shape: [t, c]), dGateProj: Tensor(shape: [i, c]),
        dUpProj: Tensor(shape: [i, c]), dDownProj: Tensor(shape: [c, i]))
    withPtr(x) { X in
        withPtr(wg) { WG in
            withPtr(wu) { WU in
                withPtr(wd) { WD in
                    withPtr(dy) { DY in
                        gemm(false, true, t, i, c, 1, X, c, WG, c, 0, g.p, i) // g = x Wgᵀ
                        gemm(false, true, t, i, c, 1, X, c, WU, c, 0, u.p, i) // u = x Wuᵀ
                        for k in 0..<n { sig[k] = sigmoid(g[k]) }
                        for k in 0..<n { s[k] = g[k] * sig[k] }
                        for k in 0..<n { a[k] = s[k] * u[k] }
                        out.y.withUnsafeMutableStorage {
                            gemm(false, true, t, c, i, 1, a.p, i, WD, i, 0, $0.baseAddress!, c)
                        }
                        out.dDownProj.withUnsafeMutableStorage {
                            gemm(true, false, c, i, t, 1, DY, c, a.p, i, 0, $0.baseAddress!, i)
                        }
                        gemm(false, false, t, i, c, 1, DY, c, WD, i, 0, da.p, i) // da = dy Wd
                        for k in 0..<n { ds[k] = sig[k] * (1 + g[k] * (1 - sig[k])) }
                        for k in 0..<n { dg[k] = da[k] * u[k] * ds[k] }
                        for k in 0..<n { du[k] = da[k] * s[k] }
                        out.dx.withUnsafeMutableStorage { DX in
                            gemm(false, false, t, c, i, 1, dg.p, i, WG, c, 0, DX.baseAddress!, c)
                            gemm(false, false, t, c, i, 1, du.p, i, WU, c, 1, DX.baseAddress!, c)
                        }
                        out.dGateProj.withUnsafeMutableStorage {
                            gemm(true, false, i, c, t, 1, dg.p, i, X, c, 0, $0.baseAddress!, c)
                        }
                        out.dUpProj.withUnsafeMutableStorage {
                            gemm(true, false, i, c, t, 1, du.p, i, X, c, 0, $0.baseAddress!, c)
                        }
                    }
                }
            }
        }
    }
    return out
}

/// Forward and backward of the MLP with three (T, I) buffers: g, u and one shared by a and da.
public func mlpFused(x: Tensor, gateProj wg: Tensor, upProj wu: Tensor, downProj wd: Tensor, dy: Tensor) -> MLPGradients
{
    let (t, c, i) = checkMLP(x, wg, wu, wd, dy)
    let n = t * i
    let g = Scratch(n, zeroed: false), u = Scratch(n, zeroed: false), a = Scratch(n, zeroed: false)
    var out = MLPGradients(
        y: Tensor(shape: [t, c]), dx: Tensor(shape: [t, c]), dGateProj: Tensor(shape: [i, c]),
        dUpProj: Tensor(shape: [i, c]), dDownProj: Tensor(shape: [c, i]))
    withPtr(x) { X in
        withPtr(wg) { WG in
            withPtr(wu) { WU in
                withPtr(wd) { WD in
                    withPtr(dy) { DY in
                        gemm(false, true, t, i, c, 1, X, c, WG, c, 0, g.p, i)
                        gemm(false, true, t, i, c, 1, X, c, WU, c, 0, u.p, i)
                        swigluForwardKernel(g.p, u.p, a.p, n)
                        out.y.withUnsafeMutableStorage {
                            gemm(false, true, t, c, i, 1, a.p, i, WD, i, 0, $0.baseAddress!, c)
                        }
                        out.dDownProj.withUnsafeMutableStorage {
                            gemm(true, false, c, i, t, 1, DY, c, a.p, i, 0, $0.baseAddress!, i)
                        }
                        gemm(false, false, t, i, c, 1, DY, c, WD, i, 0, a.p, i) // a's buffer now holds da
                        swigluBackwardKernel(a.p, g.p, u.p, n) // g ← dg, u ← du
                        out.dx.withUnsafeMutableStorage { DX in
                            gemm(false, false, t, c, i, 1, g.p, i, WG, c, 0, DX.baseAddress!, c)
                            gemm(false, false, t, c, i, 1, u.p, i, WU, c, 1, DX.baseAddress!, c)
                        }
                        out.dGateProj.withUnsafeMutableStorage {
                            gemm(true, false, i, c, t, 1, g.p, i, X, c, 0, $0.baseAddress!, c)
                        }
                        out.dUpProj.withUnsafeMutableStorage {
                            gemm(true, false, i, c, t, 1, u.p, i, X, c, 0, $0.baseAddress!, c)
                        }
                    }
                }
            }
        }
    }
    return out
}
