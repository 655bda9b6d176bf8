// Sample packing and the progressive context schedule (docs/spec.md §2.2, §8; paper §3.2.2).
//
// Packing: after ADS has fitted every sample to L, samples are packed into sequences of at most L
// tokens by first-fit decreasing (FFD): sort by length, longest first (ties: earlier sample first), and
// put each into the first open pack with room, else open a new pack. `packFirstFitDecreasingNaive` scans
// the packs one by one (O(S·K) for S samples and K packs); `packFirstFitDecreasing` finds the same first
// pack with a max-tree over the packs' free space (O(S log S)). Both give identical packs.
//
// Progressive schedule: Eagle 2.5 trains at L = 32K, then 64K, then 128K. `progressiveSchedule` runs ADS
// on the same sample set at each L (a sample that cannot be fitted is dropped at that stage, as the paper
// discards it) and packs the fitted ones.
//
// What it is not: the training-time data loader (the reference drops a pack's overflowing last sample
// there; here ADS has already made every sample fit, so nothing is dropped or truncated).

/// Packs of sample indices, each holding at most `capacity` tokens.
public struct Packing: Equatable, Sendable {
    /// Sample indices per pack, in the order they were placed.
    public let packs: [[Int]]
    /// Tokens used per pack.
    public let used: [Int]
    public let capacity: Int
}

/// Why a set of lengths cannot be packed.
public enum PackingError: Error, Equatable, CustomStringConvertible, Sendable {
    case sampleTooLong(sample: Int, length: Int, capacity: Int)
    case badCapacity(Int)
    public var description: String {
        switch self {
        case let .sampleTooLong(i, n, c):
            return "sample \(i) has \(n) tokens, more than the pack length \(c); fit it with ADS first"
        case let .badCapacity(c): return "pack length must be at least 1 (got \(c))"
        }
    }
}

/// Sample order for FFD: length descending, earlier sample first on ties.
func decreasingOrder(_ lengths: [Int]) -> [Int] {
    lengths.indices.sorted { lengths[$0] > lengths[$1] || (lengths[$0] == lengths[$1] && $0 < $1) }
}

func checkPackable(_ lengths: [Int], capacity: Int) throws {
    guard capacity >= 1 else { throw PackingError.badCapacity(capacity) }
    for (i, n) in lengths.enumerated() where n > capacity || n < 0 {
        throw PackingError.sampleTooLong(sample: i, length: n, capacity: capacity)
    }
}

/// First-fit decreasing, the plain way: for each sample (longest first) scan the packs in order.
public func packFirstFitDecreasingNaive(_ lengths: [Int], capacity: Int) throws -> Packing {
    try checkPackable(lengths, capacity: capacity)
    var packs = [[Int]](), used = [Int]()
    for i in decreasingOrder(lengths) {
        if let k = used.firstIndex(where: { $0 + lengths[i] <= capacity }) {
            packs[k].append(i); used[k] += lengths[i]
        } else {
            packs.append([i]); used.append(lengths[i])
        }
    }
    return Packing(packs: packs, used: used, capacity: capacity)
}

/// First-fit decreasing with a max-tree over free space: the leftmost pack with free ≥ n is found by
/// walking down from the root, always into the left child when it has room. At most S packs exist, so
/// the tree has S leaves, all "free = capacity" until a pack is opened there.
public func packFirstFitDecreasing(_ lengths: [Int], capacity: Int) throws -> Packing {
    try checkPackable(lengths, capacity: capacity)
    let s = lengths.count
    guard s > 0 else { return Packing(packs: [], used: [], capacity: capacity) }
    var leaves = 1
    while leaves < s { leaves *= 2 }
    var tree = [Int](repeating: capacity, count: 2 * leaves) // tree[1] root, leaves at [leaves, 2·leaves)
    var packs = [[Int]](), used = [Int]()
    for i in decreasingOrder(lengths) {
        let n = lengths[i]
        var node = 1
        while node < leaves { node = tree[2 * node] >= n ? 2 * node : 2 * node + 1 }
        let k = node - leaves
        if k == packs.count { packs.append([]); used.append(0) } // the first never-opened pack
        packs[k].append(i); used[k] += n
        tree[node] -= n
        var up = node / 2
        while up >= 1 { tree[up] = max(tree[2 * up], tree[2 * up + 1]); up /= 2 }
    }
    return Packing(packs: packs, used: used, capacity: capacity)
}

/// One stage of the progressive schedule.
public struct ScheduleStage: Sendable {
    public let maxContext: Int
    /// Per sample: its allocation, or why it was dropped at this L.
    public let allocations: [Result<ADSAllocation, ADSError>]
    /// Packs of the fitted samples (indices into the sample set).
    public let packing: Packing

    public var fittedCount: Int {
        allocations.filter { if case .success = $0 { return true } else { return false } }.count
    }
}

/// The same samples (their `maxContext` is replaced by each stage's L) allocated and packed at each L.
public func progressiveSchedule(
    _ samples: [ADSRequest], contexts: [Int] = [32_768, 65_536, 131_072],
    config: ADSConfig = ADSConfig()
) throws -> [ScheduleStage] {
    try contexts.map { l in
        let allocations: [Result<ADSAllocation, ADSError>] = samples.map { s in
            var r = s
            r.maxContext = l
            do { return .success(try automaticDegradeSampling(r, config: config)) } catch let e as ADSError {
                return .failure(e)
            } catch { return .failure(.invalidRequest(field: "sample", reason: "\(error)")) }
        }
        // Pack only the fitted samples, but report their indices in the full set.
        var fitted = [Int](), lengths = [Int]()
        for (i, a) in allocations.enumerated() {
            if case let .success(x) = a { fitted.append(i); lengths.append(x.totalTokens) }
        }
        let p = try packFirstFitDecreasing(lengths, capacity: l)
        return ScheduleStage(
            maxContext: l, allocations: allocations,
            packing: Packing(packs: p.packs.map { $0.map { fitted[$0] } }, used: p.used, capacity: l))
    }
}
