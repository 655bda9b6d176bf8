// The decoder-level check of context parallelism: Qwen2's forward with the sequence sharded over ranks.
//
// What it is: every rank holds the token ids of its layout; embeddings, RMSNorms, projections, RoPE
// (at the tokens' global positions) and the MLP are per token and run locally with Qwen2's own weights
// and modules; only the attention core is replaced by a context-parallel scheme. The logits of a rank's
// tokens must equal the matching rows of the single-rank forward.
// What it is not: a training step or a KV cache (prefill only).
import QwenAttention
import Qwen2
import Tensor

extension Qwen2ForCausalLM {
    /// Logits (n, V) of this rank's tokens `plan.layouts[comm.rank]` of `ids` (all T token ids; each rank
    /// reads only its own). Single sequence or packed per `plan.cuSeqlens` (positions restart per
    /// sequence, as in packed training).
    public func contextParallelLogits(_ ids: [Int], plan: CPPlan, comm: Communicator) -> Tensor {
        let layout = plan.layouts[comm.rank]
        let positions = Sharding.positions(layout)
        let localIds = positions.map { ids[$0] }
        let ropePositions = layout.flatMap { s in (s.start..<s.end).map { $0 - s.sequenceStart } }
        let (cos, sin) = rope.cosSin(positions: ropePositions)
        let n = positions.count
        var h = embed(localIds)
        for layer in layers {
            let a = layer.self_attn
            let x = layer.input_layernorm(h)
            var q = a.q_proj(x), k = a.k_proj(x)
            let v = a.v_proj(x)
            rope.apply(&q, heads: a.numHeads, cos: cos, sin: sin)
            rope.apply(&k, heads: a.numKeyValueHeads, cos: cos, sin: sin)
            let qh = q.reshaped([n, a.numHeads, a.headDim]).permuted([1, 0, 2])
            let kh = k.reshaped([n, a.numKeyValueHeads, a.headDim]).permuted([1, 0, 2])
            let vh = v.reshaped([n, a.numKeyValueHeads, a.headDim]).permuted([1, 0, 2])
            let res = contextParallelAttention(q: qh, k: kh, v: vh, plan: plan, comm: comm)
            let merged = res.out.permuted([1, 0, 2]).reshaped([n, a.numHeads * a.headDim])
            var y = h + a.o_proj(merged)
            let m = layer.mlp(layer.post_attention_layernorm(y))
            y = y + m
            h = y
        }
        return lm_head(norm(h))
    }
}
