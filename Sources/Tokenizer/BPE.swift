// Byte-pair merges by rank (docs/spec.md §5.4): a pre-token spelled in the byte-level alphabet starts as one
// symbol per byte; repeatedly the adjacent pair with the lowest merge rank (leftmost on ties) is fused,
// until no adjacent pair is in the merge table. Two versions:
//   - `BPE.naive`: strings, a linear search for the best pair at every step (the textbook loop).
//   - `BPE.merge`: token ids, pair ranks kept beside the symbols and updated locally after each merge;
//     O(n²) in the piece length n, the fastest for the short pieces that make up almost all text.
//   - `BPE.mergeHeap`: for long pieces (a long run of letters, base64, minified text), a min-heap of
//     (rank, position) over a linked list of symbols: O(n log n). `merge` hands pieces longer than
//     `BPE.heapThreshold` bytes to it.
// All tested against HF tokenizers' ids and against each other. Caching of whole pieces lives in Tokenizer.swift.

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
            guard let ia = vocab[a] else {
                throw TokenizerError.mergeUnknownToken(path: path, line: rank + 1, token: a)
            }
            guard let ib = vocab[b] else {
                throw TokenizerError.mergeUnknownToken(path: path, line: rank + 1, token: b)
            }
            guard let im = vocab[a + b] else {
                throw TokenizerError.mergeUnknownToken(path: path, line: rank + 1, token: a + b)
            }
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
        if n > BPE.heapThreshold { mergeHeap(&ids); return }
        mergeQuadratic(&ids)
    }

    /// Pieces longer than this many symbols go to `mergeHeap`.
    public static let heapThreshold = 96

    @inline(__always)
    func pairRank(_ a: Int32, _ b: Int32) -> UInt64? {
        table[UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))]
    }

    /// The O(n²) loop of `merge`, for any length (tests call it on long pieces too).
    public func mergeQuadratic(_ ids: inout [Int32]) {
        let n = ids.count
        if n < 2 { return }
        let none = UInt64.max
        var rank = [UInt64](repeating: none, count: n - 1)
        for i in 0..<(n - 1) {
            rank[i] = table[UInt64(UInt32(bitPattern: ids[i])) << 32 | UInt64(UInt32(bitPattern: ids[i + 1]))] ?? none
        }
        while true {
            var best = none, at = -1
            for i in 0..<rank.count where rank[i] < best { best = rank[i]; at = i }
            if at < 0 { return }
            ids[at] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
            ids.remove(at: at + 1)
            rank.remove(at: at)
            if at < rank.count {
                rank[at] =
                    table[UInt64(UInt32(bitPattern: ids[at])) << 32 | UInt64(UInt32(bitPattern: ids[at + 1]))] ?? none
            }
            if at > 0 {
                rank[at - 1] =
                    table[UInt64(UInt32(bitPattern: ids[at - 1])) << 32 | UInt64(UInt32(bitPattern: ids[at]))] ?? none
            }
        }
    }

    /// The O(n log n) loop: symbols in a linked list (`next`/`prev` by original position), candidate
    /// pairs in a min-heap keyed `rank << 32 | position`, so the lowest rank pops first and, among equal
    /// ranks, the leftmost. A popped entry is stale when its left symbol was consumed or its pair no
    /// longer has that rank; it is then skipped. Same result as `mergeQuadratic`, merge for merge.
    public func mergeHeap(_ ids: inout [Int32]) {
        let n = ids.count
        if n < 2 { return }
        var sym = ids
        var next = [Int32]((1...n).map { Int32($0) }); next[n - 1] = -1
        var prev = [Int32]((0..<n).map { Int32($0) - 1 })
        var alive = [Bool](repeating: true, count: n)
        var heap = [UInt64]()
        heap.reserveCapacity(n)
        func push(_ x: UInt64) {
            heap.append(x)
            var i = heap.count - 1
            while i > 0 {
                let p = (i - 1) / 2
                if heap[p] <= heap[i] { break }
                heap.swapAt(p, i); i = p
            }
        }
        func pop() -> UInt64 {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var m = i
                    if l < heap.count, heap[l] < heap[m] { m = l }
                    if r < heap.count, heap[r] < heap[m] { m = r }
                    if m == i { break }
                    heap.swapAt(i, m); i = m
                }
            }
            return top
        }
        for i in 0..<(n - 1) {
            if let r = pairRank(sym[i], sym[i + 1]) { push((r >> 32) << 32 | UInt64(i)) }
        }
        while !heap.isEmpty {
            let top = pop()
            let rank = top >> 32, p = Int(top & 0xFFFF_FFFF)
            guard alive[p], next[p] >= 0 else { continue }
            let q = Int(next[p])
            guard let r = pairRank(sym[p], sym[q]), r >> 32 == rank else { continue }
            sym[p] = Int32(truncatingIfNeeded: r & 0xFFFF_FFFF)
            alive[q] = false
            next[p] = next[q]
            if next[q] >= 0 { prev[Int(next[q])] = Int32(p) }
            if prev[p] >= 0, let r2 = pairRank(sym[Int(prev[p])], sym[p]) { push((r2 >> 32) << 32 | UInt64(prev[p])) }
            if next[p] >= 0, let r3 = pairRank(sym[p], sym[Int(next[p])]) { push((r3 >> 32) << 32 | UInt64(p)) }
        }
        ids.removeAll(keepingCapacity: true)
        var i = 0
        while i >= 0 && i < n { ids.append(sym[i]); i = Int(next[i]) }
    }
}
