// Rotary position embedding forward and backward on q and k, naive and fused (docs/spec.md §8.1: Liger's
// liger_rotary_pos_emb; the convention is QwenAttention's half-rotation, docs/spec.md §5.2).
//
// Forward, per head vector x (D) of a token with tables cos, sin (D):
//     x' = x · cos + rotate_half(x) · sin,     rotate_half(x) = concat(−x[D/2:], x[:D/2]).
// It is a rotation of each pair (x_k, x_{k+D/2}) by the angle θ_k, so the backward is the inverse
// rotation (angle −θ_k): dx = dy · cos + rotate_halfᵀ(dy · sin), rotate_halfᵀ(z) = concat(z[D/2:], −z[:D/2]).
// Layout: token-major, q (T, H·D) and k (T, Hkv·D); cos and sin (T, D) from `RotaryEmbedding.cosSin`.
//
// * naive: out of place; rotate_half(x), x·cos and rotate_half(x)·sin are each a full (T, H·D) buffer.
// * fused: one kernel that walks q and k together and rotates every pair in place (the backward is the
//   same kernel with sin negated). No scratch at all.
// Not here: scaled RoPE variants, M-RoPE.
import Tensor

private func ropeNaiveOne(_ x: Tensor, cos: Tensor, sin: Tensor, inverse: Bool) -> Tensor {
    let t = cos.shape[0], d = cos.shape[1], half = d / 2
    precondition(x.rank == 2 && x.shape[0] == t && x.shape[1] % d == 0, "rope: x \(x.shape) vs cos \(cos.shape)")
    let w = x.shape[1], n = t * w
    let rot = Scratch(n), xc = Scratch(n), rs = Scratch(n)
    for r in 0..<t {
        for j in 0..<w {
            let k = j % d, base = r * w + j - k
            if inverse { // rotate_halfᵀ applied after the sin product: concat(z[h:], −z[:h]), z = x · sin
                rot[r * w + j] =
                    k < half
                    ? x.storage[base + k + half] * sin.storage[r * d + k + half]
                    : -x.storage[base + k - half] * sin.storage[r * d + k - half]
            } else { // rotate_half(x)
                rot[r * w + j] = k < half ? -x.storage[base + k + half] : x.storage[base + k - half]
            }
        }
    }
    for r in 0..<t { for j in 0..<w { xc[r * w + j] = x.storage[r * w + j] * cos.storage[r * d + j % d] } }
    if inverse {
        for i in 0..<n { rs[i] = rot[i] }
    } else {
        for r in 0..<t { for j in 0..<w { rs[r * w + j] = rot[r * w + j] * sin.storage[r * d + j % d] } }
    }
    return Tensor(shape: x.shape) { i in xc[i] + rs[i] }
}

/// RoPE out of place, every intermediate materialised: returns (q', k').
public func ropeNaive(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor) -> (q: Tensor, k: Tensor) {
    (ropeNaiveOne(q, cos: cos, sin: sin, inverse: false), ropeNaiveOne(k, cos: cos, sin: sin, inverse: false))
}

/// RoPE backward out of place: (dq, dk) from the gradients of the rotated q and k.
public func ropeBackwardNaive(dq: Tensor, dk: Tensor, cos: Tensor, sin: Tensor) -> (dq: Tensor, dk: Tensor) {
    (ropeNaiveOne(dq, cos: cos, sin: sin, inverse: true), ropeNaiveOne(dk, cos: cos, sin: sin, inverse: true))
}

/// Fused RoPE: rotates q (T, H·D) and k (T, Hkv·D) in place, one pass over both.
public func ropeFused(q: inout Tensor, k: inout Tensor, cos: Tensor, sin: Tensor) {
    ropeInPlace(&q, &k, cos, sin, sign: 1)
}

/// Fused RoPE backward: the inverse rotation of dq and dk in place (forward kernel with −sin).
public func ropeBackwardFused(dq: inout Tensor, dk: inout Tensor, cos: Tensor, sin: Tensor) {
    ropeInPlace(&dq, &dk, cos, sin, sign: -1)
}

private func ropeInPlace(_ q: inout Tensor, _ k: inout Tensor, _ cos: Tensor, _ sin: Tensor, sign: Float) {
    let t = cos.shape[0], d = cos.shape[1]
    precondition(
        q.count % (t * d) == 0 && k.count % (t * d) == 0, "rope: q \(q.shape), k \(k.shape) vs cos \(cos.shape)")
    let hq = q.count / (t * d), hk = k.count / (t * d)
    q.withUnsafeMutableStorage { QB in
        k.withUnsafeMutableStorage { KB in
            ropeRows(QB.baseAddress!, rowStride: hq * d, heads: hq, cos: cos, sin: sin, sign: sign)
            ropeRows(KB.baseAddress!, rowStride: hk * d, heads: hk, cos: cos, sin: sin, sign: sign)
        }
    }
}

/// RoPE in place on `heads` consecutive head blocks of D = cos.shape[1] floats at the start of each of T =
/// cos.shape[0] rows `rowStride` floats apart: q's heads then k's heads of a fused (T, (H + 2·Hkv)·D) qkv buffer
/// (heads H + Hkv), or one tensor's. Pairs (j, j + D/2) of row t turn by the angle in cos/sin row t:
///     x_j ← x_j·cos_j − sign·x_{j+D/2}·sin_j,   x_{j+D/2} ← x_{j+D/2}·cos_{j+D/2} + sign·x_j·sin_{j+D/2}
/// sign = 1 forward, −1 for the backward (the inverse rotation).
public func ropeRows(
    _ x: UnsafeMutablePointer<Float>, rowStride: Int, heads: Int, cos: Tensor, sin: Tensor, sign: Float
) {
    let t = cos.shape[0], d = cos.shape[1], half = d / 2
    withPtr(cos) { C in
        withPtr(sin) { S in
            for r in 0..<t {
                let c = C + r * d, s = S + r * d
                for h in 0..<heads {
                    let y = x + r * rowStride + h * d
                    for j in 0..<half {
                        let a = y[j], b = y[j + half]
                        y[j] = a * c[j] - sign * b * s[j]
                        y[j + half] = b * c[j + half] + sign * a * s[j + half]
                    }
                }
            }
        }
    }
}
