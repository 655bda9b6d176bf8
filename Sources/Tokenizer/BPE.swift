// Byte-pair merges by rank (spec 5.4): a pre-token spelled in the byte-level alphabet starts as one
// symbol per byte; repeatedly the adjacent pair with the lowest merge rank (leftmost on ties) is fused,
// until no adjacent pair is in the merge table. Two versions:
//   - `BPE.naive`: strings, a linear search for the best pair at every step (the textbook loop).
//   - `BPE.merge`: token ids, pair ranks kept beside the symbols and updated locally after each merge.
// Both tested against HF tokenizers' ids. Caching of whole pieces lives in Tokenizer.swift.

/// The merge table of a BPE model, keyed by the ids of the two tokens.
public struct BPE: Sendable {
    /// `table[left << 32 | right]` = `rank << 32 | merged id`.
    let table: [UInt64: UInt64]
    /// The same table by strings, for the naive path: `"left right"` → rank.
    let ranks: [String: Int]

    /// Builds the table from merges in rank order. `vocab` maps tokens to ids.
    init(merges: [(String, String)], vocab: [String: Int], path: String) throws {
        var table = [UInt64: UInt64](minimumCapacity: merges.count)
        var ranks = [String: Int](minimumCapacity: merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            guard let ia = vocab[a] else { throw TokenizerError.mergeUnknownToken(path: path, line: rank + 1, token: a) }
            guard let ib = vocab[b] else { throw TokenizerError.mergeUnknownToken(path: path, line: rank + 1, token: b) }
            guard let im = vocab[a + b] else { throw TokenizerError.mergeUnknownToken(path: path, line: rank + 1, token: a + b) }
            let key = UInt64(ia) << 32 | UInt64(ib)
            if table[key] == nil { table[key] = UInt64(rank) << 32 | UInt64(im) }
            if ranks[a + " " + b] == nil { ranks[a + " " + b] = rank }
        }
        self.table = table
        self.ranks = ranks
    }

    /// The rank of merging `left` and `right` (0 = the first merge learned), or nil if they never merge.
    public func rank(_ left: String, _ right: String) -> Int? { ranks[left + " " + right] }

    /// The number of merges.
    public var count: Int { table.count }

    /// The textbook loop on strings: `symbols` are byte-level characters of one pre-token; returns the
    /// merged tokens. O(n²) per piece.
    public func naive(_ symbols: [String]) -> [String] {
        var s = symbols
        while s.count > 1 {
            var best = Int.max, at = -1
            for i in 0..<(s.count - 1) {
                if let r = ranks[s[i] + " " + s[i + 1]], r < best { best = r; at = i }
            }
            if at < 0 { break }
            s[at] += s[at + 1]
            s.remove(at: at + 1)
        }
        return s
    }

    /// The fast loop on ids: `ids` holds one id per byte on entry and the merged ids on return.
    /// `rank[i]` caches the rank of the pair (ids[i], ids[i+1]) so each step is one scan for the minimum
    /// and two table look-ups, not n look-ups.
    @inline(__always)
    public func merge(_ ids: inout [Int32]) {
        let n = ids.count
        if n < 2 { return }
        let none = UInt64.max
        var rank = [UInt64](repeating: none, count: n - 1)
        for i in 0..<(n - 1) { rank[i] = table[UInt64(UInt32(bitPattern: ids[i])) << 32 | UInt64(UInt32(bitPattern: ids[i + 1]))] ?? none }
        while true {
            var best = none, at = -1
            for i in 0..<rank.count where rank[i] < best { best = rank[i]; at = i }
            if at < 0 { return }
            ids[at] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
            ids.remove(at: at + 1)
            rank.remove(at: at)
            if at < rank.count {
                rank[at] = table[UInt64(UInt32(bitPattern: ids[at])) << 32 | UInt64(UInt32(bitPattern: ids[at + 1]))] ?? none
            }
            if at > 0 {
                rank[at - 1] = table[UInt64(UInt32(bitPattern: ids[at - 1])) << 32 | UInt64(UInt32(bitPattern: ids[at]))] ?? none
            }
        }
    }
}
