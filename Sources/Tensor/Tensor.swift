// Tensor: the one array type of Eaglet.
//
// What it is: a Float32, row-major (C-order), dense n-dimensional array held in a Swift `[Float]`,
// so it is a value type with copy-on-write. Shapes use fixed letters in doc comments throughout
// Eaglet: B batch, T tokens, C channels, H heads, D head dim, N tiles, V vocabulary.
//
// What it is not: a view system, a lazy graph or an autograd engine. Reshape shares storage (free);
// transpose and slicing copy. Everything the model needs fits in this file and its neighbours:
// matmul (Matmul.swift), elementwise ops and normalisations (Ops.swift), dtype conversion (DType.swift).
// Shape mismatches between tensors are programmer errors and trap with a message; data that comes from
// users (files, images, prompts) is validated by the loaders before it ever reaches here.

extension Array where Element == Float {
    /// `count` floats left as the allocator gave them (any bit pattern is a Float): for buffers a kernel such as
    /// sgemm with β = 0 overwrites in full before anything reads them, so they are not zero-filled first.
    public init(unwrittenCount count: Int) {
        self.init(unsafeUninitializedCapacity: count) { _, written in written = count }
    }
}

/// A dense Float32 tensor, row-major.
///
/// Element `[i0, i1, …, ik]` lives at `Σ i_j · strides[j]`, with `strides[k] = 1` and
/// `strides[j] = strides[j+1] · shape[j+1]`.
public struct Tensor: Equatable, Sendable {
    /// Extent of each dimension. A scalar has shape `[]` and one element.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `storage.count == shape.reduce(1, *)`. Read it freely; write through
    /// `withUnsafeMutableStorage` or `self[flat:]`, so the count can never stop matching the shape.
    public internal(set) var storage: [Float]

    /// Wraps `storage` with `shape`. Traps if the element count disagrees.
    public init(shape: [Int], storage: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative extent in shape \(shape)")
        precondition(
            Tensor.elementCount(shape) == storage.count,
            "Tensor: shape \(shape) needs \(Tensor.elementCount(shape)) elements, got \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    /// A tensor of `shape` filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        self.init(shape: shape, storage: [Float](repeating: value, count: Tensor.elementCount(shape)))
    }

    /// A tensor of `shape` whose storage `fill` writes in full; it is not zeroed first (for kernels such as
    /// sgemm with β = 0 that overwrite every element).
    public init(shape: [Int], overwrittenBy fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let n = Tensor.elementCount(shape)
        self.init(
            shape: shape,
            storage: [Float](unsafeUninitializedCapacity: n) { buffer, written in
                fill(buffer)
                written = n
            })
    }

    /// A tensor of `shape` whose elements are `f(flatIndex)`.
    public init(shape: [Int], _ f: (Int) -> Float) {
        let n = Tensor.elementCount(shape)
        self.init(shape: shape, storage: (0..<n).map(f))
    }

    /// Product of the extents (1 for a scalar).
    public static func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Number of elements.
    public var count: Int { storage.count }
    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// Row-major strides in elements.
    public var strides: [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) { s[d] = acc; acc *= shape[d] }
        return s
    }

    /// Flat offset of a multi-index (bounds-checked).
    @inlinable
    public func offset(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "Tensor: index \(index) has wrong rank for shape \(shape)")
        var off = 0
        for d in 0..<shape.count {
            precondition(index[d] >= 0 && index[d] < shape[d], "Tensor: index \(index) out of bounds for \(shape)")
            off = off * shape[d] + index[d]
        }
        return off
    }

    /// Element `i` in row-major order.
    public subscript(flat i: Int) -> Float {
        get { storage[i] }
        set { storage[i] = newValue }
    }

    /// Calls `body` with the elements, writable in place (copied first if another tensor shares them).
    public mutating func withUnsafeMutableStorage<R>(_ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R)
        rethrows -> R
    {
        try storage.withUnsafeMutableBufferPointer(body)
    }

    /// Element access by multi-index: `t[i, j, k]`.
    public subscript(_ index: Int...) -> Float {
        get { storage[offset(index)] }
        set { storage[offset(index)] = newValue }
    }

    /// The same elements with another shape (no copy). One extent may be -1 and is inferred.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let k = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != k }.map(\.element).reduce(1, *)
            precondition(
                known > 0 && count % known == 0, "Tensor: cannot infer -1 in \(newShape) for \(count) elements")
            s[k] = count / known
        }
        return Tensor(shape: s, storage: storage)
    }
}

extension Tensor: CustomStringConvertible {
    /// `Tensor([2, 3]) [0.1, 0.2, …]` with at most 8 elements shown.
    public var description: String {
        let shown = storage.prefix(8).map { formatValue($0) }.joined(separator: ", ")
        return "Tensor(\(shape)) [\(shown)\(count > 8 ? ", …" : "")]"
    }
}

/// Formats a Float the way the chapters print numbers: 4 decimals, fixed point.
public func formatValue(_ x: Float, decimals: Int = 4) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x > 0 ? "inf" : "-inf" }
    var scale: Double = 1
    for _ in 0..<decimals { scale *= 10 }
    let r = (Double(x) * scale).rounded() / scale
    var s = String(r == 0 ? 0 : r) // avoid "-0.0"
    // pad to a fixed number of decimals
    if let dot = s.firstIndex(of: ".") {
        let have = s.distance(from: dot, to: s.endIndex) - 1
        if have < decimals { s += String(repeating: "0", count: decimals - have) }
    }
    if s.contains("e") { return String(x) }
    return s
}
