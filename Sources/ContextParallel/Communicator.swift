// The communication layer of context parallelism (docs/spec.md §8.2–8.4): one rank's view of a group of W
// ranks that exchange Float buffers.
//
// What it is: the `Communicator` protocol (point-to-point send / receive, a paired send-receive, and a
// barrier, each rank counting the bytes it sends), the collectives every scheme needs (all-gather,
// all-to-all, reduce-scatter) written once on top of the paired exchange, and `GroupCommunicator`, a
// sub-group (Ulysses group, ring group) of a parent communicator. All-gather and all-to-all are also
// requirements of the protocol, with the pairwise versions as defaults, so a communicator with native
// collectives (NCCL's all-gather, one group of sends and receives for the all-to-all) uses them.
// What it is not: a tuned collective library. The collectives are W−1 rounds of pairwise exchange
// (round s: send to rank + s, receive from rank − s), so their byte counts are easy to state:
//     all-gather of n floats per rank:       (W − 1) · n · 4 bytes sent per rank
//     all-to-all with parts p_j (to rank j): Σ_{j ≠ rank} |p_j| · 4
//     reduce-scatter with parts p_j:         Σ_{j ≠ rank} |p_j| · 4
// Messages between one ordered pair of ranks are delivered in the order they were sent, so every rank
// must issue the same sequence of calls (SPMD), which all schemes here do.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// One rank's endpoint in a group of `worldSize` ranks.
public protocol Communicator: AnyObject {
    /// This rank, 0 ..< worldSize.
    var rank: Int { get }
    var worldSize: Int { get }
    /// Bytes this rank has sent so far (4 per Float; a rank's messages to itself are free).
    var bytesSent: Int { get }
    /// Sends `data` to `dest`. May block until the receiver takes it (MPI) or return at once (threads).
    func send(_ data: [Float], to dest: Int)
    /// Blocks until the next message from `source` arrives.
    func recv(from source: Int) -> [Float]
    /// Sends `data` to `dest` and receives the next message from `source`, without deadlocking when every
    /// rank does the same at once.
    func sendRecv(_ data: [Float], to dest: Int, from source: Int) -> [Float]
    /// Returns once every rank of the group has called it.
    func barrier()
    /// Every rank's `data`, indexed by rank; (W − 1)·|data|·4 bytes sent. Default: `pairwiseAllGather`.
    func allGather(_ data: [Float]) -> [[Float]]
    /// `parts[j]` goes to rank j; returns what each rank sent to this one, indexed by sender;
    /// Σ_{j ≠ rank} |parts[j]|·4 bytes sent. Default: `pairwiseAllToAll`.
    func allToAll(_ parts: [[Float]]) -> [[Float]]
}

extension Communicator {
    public func allGather(_ data: [Float]) -> [[Float]] { pairwiseAllGather(data) }
    public func allToAll(_ parts: [[Float]]) -> [[Float]] { pairwiseAllToAll(parts) }

    /// Every rank's `data`, indexed by rank: W − 1 pairwise rounds, (W − 1)·|data|·4 bytes sent.
    public func pairwiseAllGather(_ data: [Float]) -> [[Float]] {
        var parts = [[Float]](repeating: [], count: worldSize)
        parts[rank] = data
        for s in 1..<max(1, worldSize) {
            let to = (rank + s) % worldSize, from = (rank - s + worldSize) % worldSize
            parts[from] = sendRecv(data, to: to, from: from)
        }
        return parts
    }

    /// `parts[j]` goes to rank j; returns what each rank sent to this one, indexed by sender: W − 1
    /// pairwise rounds (round s: send to rank + s, receive from rank − s).
    public func pairwiseAllToAll(_ parts: [[Float]]) -> [[Float]] {
        precondition(parts.count == worldSize, "allToAll: \(parts.count) parts for \(worldSize) ranks")
        var got = [[Float]](repeating: [], count: worldSize)
        got[rank] = parts[rank]
        for s in 1..<max(1, worldSize) {
            let to = (rank + s) % worldSize, from = (rank - s + worldSize) % worldSize
            got[from] = sendRecv(parts[to], to: to, from: from)
        }
        return got
    }

    /// `parts[j]` is this rank's contribution to rank j's block; returns Σ over ranks of their
    /// `parts[rank]` (element-wise). All parts for one destination must have equal length.
    public func reduceScatter(_ parts: [[Float]]) -> [Float] {
        let got = allToAll(parts)
        var sum = got[rank]
        for j in 0..<worldSize where j != rank {
            precondition(got[j].count == sum.count, "reduceScatter: part lengths differ")
            for i in 0..<sum.count { sum[i] += got[j][i] }
        }
        return sum
    }
}

/// A sub-group of a parent communicator: group rank i is parent rank `members[i]`. Used for the Ulysses
/// and ring groups of the two-level scheme (docs/spec.md §8.2). Bytes are counted here and by the parent.
public final class GroupCommunicator: Communicator {
    public let parent: Communicator
    public let members: [Int]
    public let rank: Int
    public var worldSize: Int { members.count }
    public private(set) var bytesSent = 0

    /// `members` must contain the parent's rank.
    public init(parent: Communicator, members: [Int]) {
        guard let r = members.firstIndex(of: parent.rank) else {
            preconditionFailure("GroupCommunicator: rank \(parent.rank) is not in \(members)")
        }
        self.parent = parent; self.members = members; self.rank = r
    }

    public func send(_ data: [Float], to dest: Int) {
        if dest != rank { bytesSent += data.count * 4 }
        parent.send(data, to: members[dest])
    }
    public func recv(from source: Int) -> [Float] { parent.recv(from: members[source]) }
    public func sendRecv(_ data: [Float], to dest: Int, from source: Int) -> [Float] {
        if dest != rank { bytesSent += data.count * 4 }
        return parent.sendRecv(data, to: members[dest], from: members[source])
    }
    /// A barrier over the whole parent (a superset of the group, which is enough for SPMD code).
    public func barrier() { parent.barrier() }

    /// A group of all the parent's ranks in order is the parent: its collectives are the parent's (plain
    /// Ulysses gets NCCL's grouped all-to-all); any other group exchanges pairwise through the parent.
    var isWholeParent: Bool { members == Array(0..<parent.worldSize) }

    public func allGather(_ data: [Float]) -> [[Float]] {
        guard isWholeParent else { return pairwiseAllGather(data) }
        bytesSent += (worldSize - 1) * data.count * 4
        return parent.allGather(data)
    }

    public func allToAll(_ parts: [[Float]]) -> [[Float]] {
        guard isWholeParent else { return pairwiseAllToAll(parts) }
        for j in 0..<worldSize where j != rank { bytesSent += parts[j].count * 4 }
        return parent.allToAll(parts)
    }
}
