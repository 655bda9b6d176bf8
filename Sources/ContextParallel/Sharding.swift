// How a (packed) sequence is cut over ranks (docs/spec.md §8.2–8.4), used by the schemes and by the tests.
//
// What it is: a rank's share of the tokens as an ordered list of `Segment`s (runs of consecutive
// global positions inside one packed sequence). Three splits:
//   contiguous: each sequence cut into W equal chunks, rank r keeps chunk r;
//   zigzag:     each sequence cut into 2W equal chunks c_0 … c_{2W−1}, rank r keeps c_r then c_{2W−1−r};
//   packed:     either split applied to every sequence of cu_seqlens = [0, L_0, L_0 + L_1, …], the
//               rank's segments concatenated in sequence order (sequences never attend to each other).
// `shard` / `unshard` move rows of (H, T, D) or (H, T) tensors between the global order and a rank's order.
// What it is not: padding. A length the split cannot divide is a `ShardingError`.
import Tensor

/// Consecutive global positions [start, start + count) of the packed sequence that begins at
/// `sequenceStart` (keys before `sequenceStart` belong to another sequence).
public struct Segment: Equatable, Sendable, CustomStringConvertible {
    public var start: Int
    public var count: Int
    public var sequenceStart: Int
    public var end: Int { start + count }
    public init(start: Int, count: Int, sequenceStart: Int) {
        self.start = start; self.count = count; self.sequenceStart = sequenceStart
    }
    public var description: String { "[\(start),\(end))" }
}

/// A rank's tokens: segments in the rank's local order.
public typealias Layout = [Segment]

/// How sequences are cut over ranks.
public enum Split: String, Sendable, CaseIterable {
    case contiguous, zigzag
}

/// A sharding request the data cannot satisfy.
public enum ShardingError: Error, CustomStringConvertible, Equatable {
    case indivisible(what: String, length: Int, divisor: Int)
    case headsIndivisible(heads: Int, degree: Int)
    case kvHeadsStraddle(heads: Int, kvHeads: Int, degree: Int)
    case badCuSeqlens(String)
    case badWorld(String)

    public var description: String {
        switch self {
        case let .indivisible(what, length, divisor):
            return "\(what): length \(length) is not divisible by \(divisor)"
        case let .headsIndivisible(heads, degree):
            return "Ulysses: \(heads) attention heads are not divisible by the Ulysses degree \(degree)"
        case let .kvHeadsStraddle(heads, kvHeads, degree):
            return
                "Ulysses: with \(heads) heads over \(kvHeads) kv heads, degree \(degree) would split a kv head's query group unevenly"
        case let .badCuSeqlens(why): return "cu_seqlens: \(why)"
        case let .badWorld(why): return "world: \(why)"
        }
    }
}

public enum Sharding {
    /// Checks cu_seqlens = [0, …, T] strictly increasing; returns the sequences' ranges.
    public static func sequences(cuSeqlens cu: [Int]) throws -> [Range<Int>] {
        guard cu.count >= 2, cu.first == 0 else {
            throw ShardingError.badCuSeqlens("must start at 0 and hold at least two entries, got \(cu)")
        }
        var out = [Range<Int>]()
        for i in 0..<(cu.count - 1) {
            guard cu[i + 1] > cu[i] else { throw ShardingError.badCuSeqlens("must be strictly increasing, got \(cu)") }
            out.append(cu[i]..<cu[i + 1])
        }
        return out
    }

    /// Every rank's layout for `split` over W ranks; each sequence of `cuSeqlens` is split on its own.
    /// Throws when a sequence length is not divisible by W (contiguous) or 2W (zigzag).
    public static func layouts(cuSeqlens cu: [Int], world w: Int, split: Split) throws -> [Layout] {
        guard w >= 1 else { throw ShardingError.badWorld("must be at least 1, got \(w)") }
        let seqs = try sequences(cuSeqlens: cu)
        var out = [Layout](repeating: [], count: w)
        for (i, s) in seqs.enumerated() {
            let chunks = split == .contiguous ? w : 2 * w
            guard s.count % chunks == 0 else {
                throw ShardingError.indivisible(
                    what: "\(split) split of sequence \(i) over \(w) ranks", length: s.count, divisor: chunks)
            }
            let c = s.count / chunks
            for r in 0..<w {
                let ids = split == .contiguous ? [r] : [r, 2 * w - 1 - r]
                for k in ids {
                    out[r].append(Segment(start: s.lowerBound + k * c, count: c, sequenceStart: s.lowerBound))
                }
            }
        }
        return out.map(coalesced)
    }

    /// Layouts of one unpacked sequence of length T.
    public static func layouts(length t: Int, world w: Int, split: Split) throws -> [Layout] {
        try layouts(cuSeqlens: [0, t], world: w, split: split)
    }

    /// The `index`-th of `parts` equal contiguous pieces of a layout's token list (the Ulysses split of
    /// docs/spec.md §8.2, applied after the ring split).
    public static func contiguousPiece(of layout: Layout, index: Int, parts: Int) throws -> Layout {
        let n = tokenCount(layout)
        guard n % parts == 0 else {
            throw ShardingError.indivisible(
                what: "Ulysses split of a ring shard into \(parts) pieces", length: n, divisor: parts)
        }
        let piece = n / parts
        let lo = index * piece, hi = lo + piece
        var out = Layout(), at = 0
        for s in layout {
            let a = max(lo, at), b = min(hi, at + s.count)
            if a < b { out.append(Segment(start: s.start + a - at, count: b - a, sequenceStart: s.sequenceStart)) }
            at += s.count
        }
        return out
    }

    /// Merges neighbouring segments that continue each other inside one sequence.
    static func coalesced(_ l: Layout) -> Layout {
        var out = Layout()
        for s in l {
            if let last = out.last, last.end == s.start, last.sequenceStart == s.sequenceStart {
                out[out.count - 1].count += s.count
            } else {
                out.append(s)
            }
        }
        return out
    }

    public static func tokenCount(_ l: Layout) -> Int { l.reduce(0) { $0 + $1.count } }

    /// Global positions of a layout's tokens, in local order.
    public static func positions(_ l: Layout) -> [Int] { l.flatMap { Array($0.start..<$0.end) } }

    /// Rows of `x` (dim 1 of (H, T, D) or (H, T); dim 0 of (T, C) with `dim: 0`) at the layout's positions.
    public static func shard(_ x: Tensor, _ l: Layout, dim: Int = 1) -> Tensor {
        gatherRows(x, positions(l), dim: dim)
    }

    /// The inverse of `shard` over all ranks: rank r's rows go back to their global positions.
    public static func unshard(_ parts: [Tensor], _ layouts: [Layout], dim: Int = 1) -> Tensor {
        precondition(parts.count == layouts.count, "unshard: \(parts.count) parts for \(layouts.count) layouts")
        let total = layouts.reduce(0) { $0 + tokenCount($1) }
        var shape = parts[0].shape
        shape[dim] = total
        let outer = shape[..<dim].reduce(1, *), inner = shape[(dim + 1)...].reduce(1, *)
        var out = [Float](repeating: 0, count: outer * total * inner)
        for (p, l) in zip(parts, layouts) {
            let pos = positions(l), n = pos.count
            for o in 0..<outer {
                for (i, g) in pos.enumerated() {
                    for c in 0..<inner { out[(o * total + g) * inner + c] = p.storage[(o * n + i) * inner + c] }
                }
            }
        }
        return Tensor(shape: shape, storage: out)
    }

    /// Rows `rows` of `x` along `dim`, in that order.
    public static func gatherRows(_ x: Tensor, _ rows: [Int], dim: Int = 1) -> Tensor {
        var shape = x.shape
        let t = shape[dim]
        shape[dim] = rows.count
        let outer = shape[..<dim].reduce(1, *), inner = shape[(dim + 1)...].reduce(1, *)
        var out = [Float](repeating: 0, count: outer * rows.count * inner)
        x.storage.withUnsafeBufferPointer { X in
            out.withUnsafeMutableBufferPointer { O in
                for o in 0..<outer {
                    for (i, g) in rows.enumerated() {
                        let src = (o * t + g) * inner, dst = (o * rows.count + i) * inner
                        for c in 0..<inner { O[dst + c] = X[src + c] }
                    }
                }
            }
        }
        return Tensor(shape: shape, storage: out)
    }
}
