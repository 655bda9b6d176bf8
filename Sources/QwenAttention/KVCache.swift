// The KV cache: keys and values of every token seen so far, per layer, so that decoding a new token
// costs one row of attention instead of re-running the whole prefix.
//
// What it is: per layer, two buffers laid out head-major (Hkv, capacity, D) — the layout the attention
// kernel reads in place — plus the number of cached tokens. Appending T new tokens writes their rows
// after the old ones; the capacity doubles when full (one copy, amortised O(1) per token).
// What it is not: paged, quantised, or shared between sequences; there is no eviction.
import Tensor

/// Cached keys and values of one attention layer.
public struct KVCacheLayer: Sendable {
    public let kvHeads: Int
    public let headDim: Int
    /// Tokens cached so far.
    public private(set) var count = 0
    /// Rows reserved per head.
    public private(set) var capacity: Int
    /// (Hkv, capacity, D): rows 0..<count of each head are valid.
    public private(set) var keys: [Float]
    public private(set) var values: [Float]

    public init(kvHeads: Int, headDim: Int, capacity: Int = 256) {
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.capacity = max(1, capacity)
        keys = [Float](repeating: 0, count: kvHeads * self.capacity * headDim)
        values = keys
    }

    /// Appends T tokens: `k` and `v` are token-major (T, Hkv·D), as the projections produce them.
    public mutating func append(k: Tensor, v: Tensor) {
        let d = headDim, hkv = kvHeads
        let t = k.count / (hkv * d)
        precondition(
            k.count == t * hkv * d && v.count == k.count,
            "KVCacheLayer.append: k \(k.shape) / v \(v.shape) are not (T, \(hkv)·\(d))")
        if count + t > capacity { grow(to: max(2 * capacity, count + t)) }
        for ti in 0..<t {
            for g in 0..<hkv {
                let dst = (g * capacity + count + ti) * d, src = (ti * hkv + g) * d
                for c in 0..<d {
                    keys[dst + c] = k.storage[src + c]
                    values[dst + c] = v.storage[src + c]
                }
            }
        }
        count += t
    }

    /// Appends T tokens given head-major, (Hkv, T, D) each — the row-split prefill's layout.
    public mutating func append(headMajorKeys k: [Float], values v: [Float], tokens t: Int) {
        let d = headDim, hkv = kvHeads
        precondition(
            k.count == hkv * t * d && v.count == k.count,
            "KVCacheLayer.append: \(k.count) values are not (\(hkv), \(t), \(d))")
        if count + t > capacity { grow(to: max(2 * capacity, count + t)) }
        for g in 0..<hkv {
            let dst = (g * capacity + count) * d, src = g * t * d
            keys.replaceSubrange(dst..<(dst + t * d), with: k[src..<(src + t * d)])
            values.replaceSubrange(dst..<(dst + t * d), with: v[src..<(src + t * d)])
        }
        count += t
    }

    private mutating func grow(to newCapacity: Int) {
        let d = headDim
        var nk = [Float](repeating: 0, count: kvHeads * newCapacity * d)
        var nv = nk
        for g in 0..<kvHeads {
            for i in 0..<(count * d) {
                nk[g * newCapacity * d + i] = keys[g * capacity * d + i]
                nv[g * newCapacity * d + i] = values[g * capacity * d + i]
            }
        }
        keys = nk; values = nv; capacity = newCapacity
    }

    /// The cached keys or values as dense (Hkv, count, D) tensors (a copy; for tests and the naive path).
    public func dense() -> (k: Tensor, v: Tensor) {
        let d = headDim
        var k = [Float](), v = [Float]()
        k.reserveCapacity(kvHeads * count * d); v.reserveCapacity(kvHeads * count * d)
        for g in 0..<kvHeads {
            k.append(contentsOf: keys[(g * capacity * d)..<((g * capacity + count) * d)])
            v.append(contentsOf: values[(g * capacity * d)..<((g * capacity + count) * d)])
        }
        return (Tensor(shape: [kvHeads, count, d], storage: k), Tensor(shape: [kvHeads, count, d], storage: v))
    }
}

/// One `KVCacheLayer` per decoder layer.
public struct KVCache: Sendable {
    public var layers: [KVCacheLayer]
    public init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int = 256) {
        self.layers = (0..<layers).map { _ in KVCacheLayer(kvHeads: kvHeads, headDim: headDim, capacity: capacity) }
    }
    /// Tokens cached (the position of the next token).
    public var count: Int { layers.first?.count ?? 0 }
}
