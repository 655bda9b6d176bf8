// The decoder-level check of context parallelism: Qwen2's forward with the sequence sharded over ranks.
//
// What it is: every rank holds the token ids of its layout; embeddings, RMSNorms, projections, RoPE
// (at the tokens' global positions) and the MLP are per token and run locally with Qwen2's own weights
// and modules — the same `Qwen2DecoderLayer` body — with the attention core replaced by a context-parallel scheme. The
// logits of a rank's
// tokens must equal the matching rows of the single-rank forward.
// What it is not: a training step or a KV cache (prefill only).
import QwenAttention
import Qwen2
import Tensor

/// The context-parallel attention core: this rank's rotated q, k, v (its tokens of `plan.layouts[comm.rank]`)
/// through a scheme of `plan` (ring, zigzag, llama3, Ulysses, USP) over `comm`.
public struct ContextParallelCore: AttentionCore {
    public let plan: CPPlan
    public let comm: Communicator
    public init(plan: CPPlan, comm: Communicator) { self.plan = plan; self.comm = comm }

    public mutating func attend(layer: Int, q: Tensor, k: Tensor, v: Tensor, heads s: AttentionHeads, compute: Compute)
        -> Tensor
    {
        let r = contextParallelAttention(
            q: headMajor(q, heads: s.heads, headDim: s.headDim),
            k: headMajor(k, heads: s.kvHeads, headDim: s.headDim),
            v: headMajor(v, heads: s.kvHeads, headDim: s.headDim), plan: plan, comm: comm, compute: compute)
        return tokenMajor(r.out)
    }
}

extension Qwen2ForCausalLM {
    /// Logits (n, V) of this rank's tokens `plan.layouts[comm.rank]` of `ids` (all T token ids; each rank
    /// reads only its own). Single sequence or packed per `plan.cuSeqlens` (positions restart per
    /// sequence, as in packed training). The decoder is Qwen2's own layer body with `ContextParallelCore`.
    public func contextParallelLogits(
        _ ids: [Int], plan: CPPlan, comm: Communicator,
        compute: Compute = .fast(threads: 1)
    ) -> Tensor {
        let layout = plan.layouts[comm.rank]
        let localIds = Sharding.positions(layout).map { ids[$0] }
        let ropePositions = layout.flatMap { s in (s.start..<s.end).map { $0 - s.sequenceStart } }
        var core = ContextParallelCore(plan: plan, comm: comm)
        let h = hiddenStates(embed(localIds), positions: ropePositions, core: &core, compute: compute)
        return lmHead(h, compute: compute)
    }
}
