// Layout operations: transpose, permute, slicing and concatenation. All of them copy; the copies are
// cheap next to the matmuls that follow them, and copies keep every tensor dense and row-major.

extension Tensor {
    /// Swaps the last two dimensions: (…, M, N) → (…, N, M).
    public func transposedLast2() -> Tensor {
        precondition(rank >= 2, "transposedLast2 needs rank ≥ 2, shape \(shape)")
        let m = shape[rank - 2], n = shape[rank - 1]
        let batch = count / max(m * n, 1)
        var out = [Float](repeating: 0, count: count)
        storage.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for b in 0..<batch {
                    let base = b * m * n
                    for i in 0..<m {
                        for j in 0..<n { dst[base + j * m + i] = src[base + i * n + j] }
                    }
                }
            }
        }
        var s = shape
        s.swapAt(rank - 2, rank - 1)
        return Tensor(shape: s, storage: out)
    }

    /// General permutation of dimensions: `out.shape[d] = shape[order[d]]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "permuted: \(order) is not a permutation of 0..<\(rank)")
        let newShape = order.map { shape[$0] }
        let srcStrides = strides
        let permStrides = order.map { srcStrides[$0] }
        var out = [Float](repeating: 0, count: count)
        var idx = [Int](repeating: 0, count: rank)
        storage.withUnsafeBufferPointer { src in
            for flat in 0..<count {
                var off = 0
                for d in 0..<rank { off += idx[d] * permStrides[d] }
                out[flat] = src[off]
                // increment the multi-index in the output's row-major order
                var d = rank - 1
                while d >= 0 {
                    idx[d] += 1
                    if idx[d] < newShape[d] { break }
                    idx[d] = 0
                    d -= 1
                }
            }
        }
        return Tensor(shape: newShape, storage: out)
    }

    /// Elements `range` along dimension `dim` (a copy).
    public func slice(dim: Int, _ range: Range<Int>) -> Tensor {
        precondition(dim >= 0 && dim < rank, "slice: dim \(dim) out of range for \(shape)")
        precondition(
            range.lowerBound >= 0 && range.upperBound <= shape[dim],
            "slice: \(range) out of bounds for extent \(shape[dim])")
        let outer = shape[..<dim].reduce(1, *)
        let inner = shape[(dim + 1)...].reduce(1, *)
        var out = [Float]()
        out.reserveCapacity(outer * range.count * inner)
        for o in 0..<outer {
            let start = (o * shape[dim] + range.lowerBound) * inner
            out.append(contentsOf: storage[start..<(start + range.count * inner)])
        }
        var s = shape
        s[dim] = range.count
        return Tensor(shape: s, storage: out)
    }

    /// Row `i` of the leading dimension, with that dimension dropped.
    public func row(_ i: Int) -> Tensor {
        let inner = count / shape[0]
        return Tensor(shape: Array(shape.dropFirst()), storage: Array(storage[(i * inner)..<((i + 1) * inner)]))
    }

    /// Concatenation along `dim`; all other extents must agree.
    public static func concatenate(_ parts: [Tensor], dim: Int) -> Tensor {
        precondition(!parts.isEmpty, "concatenate: no tensors")
        let first = parts[0]
        for p in parts {
            precondition(p.rank == first.rank, "concatenate: rank mismatch")
            for d in 0..<first.rank where d != dim {
                precondition(
                    p.shape[d] == first.shape[d], "concatenate: shape \(p.shape) vs \(first.shape) at dim \(d)")
            }
        }
        let outer = first.shape[..<dim].reduce(1, *)
        var out = [Float]()
        out.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for o in 0..<outer {
            for p in parts {
                let chunk = p.count / max(outer, 1)
                out.append(contentsOf: p.storage[(o * chunk)..<((o + 1) * chunk)])
            }
        }
        var s = first.shape
        s[dim] = parts.reduce(0) { $0 + $1.shape[dim] }
        return Tensor(shape: s, storage: out)
    }
}
