// The Qwen2 decoder: RMSNorm, the SwiGLU MLP, the decoder layer, the model, its LM head and
// its KV cache (transformers `modeling_qwen2.py`, docs/spec.md §5); generation is in Generation.swift.
//
// What it is, for token ids (T) at positions p (T):
//     h₀ = embed_tokens[ids]                                                      (T, C)
//     per layer:  h ← h + self_attn(input_layernorm(h), p)
//                 h ← h + mlp(post_attention_layernorm(h)),  mlp(x) = down(silu(gate(x)) ⊙ up(x))
//     logits = lm_head(norm(h))                                                   (T, V)
// RMSNorm(x) = x / √(mean(x²) + eps) · weight with fp32 statistics (Eaglet accumulates in Double).
// Names mirror the checkpoint: embed_tokens, layers.N.{self_attn, mlp, input_layernorm,
// post_attention_layernorm}, norm, lm_head. With tied embeddings lm_head shares embed_tokens' storage.
// Swift names are camelCase (`selfAttn`, `inputLayernorm`); the checkpoint keys are spelled once, in Qwen2Loader.swift.
// What it is not: batched (one sequence at a time) or a trainer.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import QwenAttention
import Tensor

/// `Qwen2RMSNorm`: weight (C), eps.
public struct Qwen2RMSNorm: Sendable {
    public let weight: Tensor
    public let eps: Float
    public init(weight: Tensor, eps: Float) { self.weight = weight; self.eps = eps }
    /// x (…, C) → (…, C).
    public func callAsFunction(_ x: Tensor) -> Tensor { x.rmsNorm(weight: weight, eps: eps) }
}

/// `Qwen2MLP`: SwiGLU, no biases. gate_proj, up_proj (C → I), down_proj (I → C).
public struct Qwen2MLP: Sendable {
    public let gateProj: Linear
    public let upProj: Linear
    public let downProj: Linear
    public init(gateProj: Linear, upProj: Linear, downProj: Linear) {
        self.gateProj = gateProj; self.upProj = upProj; self.downProj = downProj
    }

    /// x (T, C) → silu(gate(x)) ⊙ up(x) (T, I): libm's exp on the reference path, the vectorised `fastSilu`
    /// on the fast one (within fp32-op of it; libm's exp would cost ~7 % of a prefill).
    func gated(_ x: Tensor, compute: Compute) -> Tensor {
        var g: Tensor, u: Tensor
        if x.count == gateProj.inFeatures && !compute.isReference && compute.gemv == .rows { // decode: one pass
            let r = gemvGroup([gateProj, upProj], x, threads: compute.threads)
            (g, u) = (r[0], r[1])
        } else {
            g = gateProj(x, compute: compute); u = upProj(x, compute: compute)
        }
        let reference = compute.isReference
        g.withUnsafeMutableStorage { G in
            u.storage.withUnsafeBufferPointer { U in
                if reference {
                    for i in 0..<G.count { G[i] = silu(G[i]) * U[i] }
                } else {
                    for i in 0..<G.count { G[i] = fastSilu(G[i]) * U[i] }
                }
            }
        }
        return g
    }

    /// x (T, C) → down(silu(gate(x)) ⊙ up(x)) (T, C).
    public func callAsFunction(_ x: Tensor, compute: Compute = .fast) -> Tensor {
        downProj(gated(x, compute: compute), compute: compute)
    }

    /// h (T, C) += mlp(x): the residual rides on down_proj's β = 1.
    public func callAsFunction(_ x: Tensor, addingTo h: inout Tensor, compute: Compute = .fast) {
        downProj(gated(x, compute: compute), addingTo: &h, compute: compute)
    }
}

/// `Qwen2DecoderLayer`: pre-norm attention and MLP, each with a residual. The one body every CPU path runs:
/// prefill and decode, the row-split prefill (per worker, over its rows) and context parallelism (per rank);
/// they differ only in the attention core passed in.
public struct Qwen2DecoderLayer: Sendable {
    public let selfAttn: Qwen2Attention
    public let mlp: Qwen2MLP
    public let inputLayernorm: Qwen2RMSNorm
    public let postAttentionLayernorm: Qwen2RMSNorm

    public init(
        selfAttn: Qwen2Attention, mlp: Qwen2MLP, inputLayernorm: Qwen2RMSNorm, postAttentionLayernorm: Qwen2RMSNorm
    ) {
        self.selfAttn = selfAttn; self.mlp = mlp
        self.inputLayernorm = inputLayernorm; self.postAttentionLayernorm = postAttentionLayernorm
    }

    /// h (T, C) at the positions of `cos`/`sin` (T, D), in place:
    ///     h ← h + o_proj(core(RoPE(q, k), v)) of input_layernorm(h);  h ← h + mlp(post_attention_layernorm(h)).
    public func callAsFunction(
        _ h: inout Tensor, rope: RotaryEmbedding, cos: Tensor, sin: Tensor, layer: Int,
        core: inout some AttentionCore, compute: Compute = .fast
    ) {
        let a = selfAttn.attend(
            inputLayernorm(h), rope: rope, cos: cos, sin: sin, layer: layer, core: &core, compute: compute)
        selfAttn.oProj(a, addingTo: &h, compute: compute)
        mlp(postAttentionLayernorm(h), addingTo: &h, compute: compute)
    }
}

/// `Qwen2ForCausalLM`: the model (`model.*`) and the LM head.
public struct Qwen2ForCausalLM: Sendable {
    public let config: Qwen2Config
    /// embed_tokens (V, C), fp32 or BF16 read in place (`WeightFormat.native`).
    public let embedding: Linear.Weight
    public let layers: [Qwen2DecoderLayer]
    public let norm: Qwen2RMSNorm
    public let lmHead: Linear // weight (V, C); shares embed_tokens' storage when tied
    public let rope: RotaryEmbedding
    /// Prefill long prompts on the fast path with the rows split over the threads (RowSplitPrefill.swift);
    /// off, OpenBLAS threads each product instead (the benchmark's `eaglet-serial`).
    public var rowSplitPrefill = true

    public init(
        config: Qwen2Config, embedding: Linear.Weight, layers: [Qwen2DecoderLayer], norm: Qwen2RMSNorm, lmHead: Linear
    ) {
        self.config = config; self.embedding = embedding; self.layers = layers; self.norm = norm
        self.lmHead = lmHead
        rope = RotaryEmbedding(headDim: config.headDim, theta: config.ropeTheta)
    }

    public init(
        config: Qwen2Config, embedTokens: Tensor, layers: [Qwen2DecoderLayer], norm: Qwen2RMSNorm, lmHead: Linear
    ) {
        self.init(config: config, embedding: .f32(embedTokens), layers: layers, norm: norm, lmHead: lmHead)
    }

    /// embed_tokens (V, C) as an fp32 tensor (a widened copy when it is kept in BF16).
    public var embedTokens: Tensor { embedding.widened }

    /// Rows of embed_tokens for `ids` (T) → (T, C). Ids outside 0..<V are a programmer error here;
    /// `generateGreedy` validates user ids first.
    public func embed(_ ids: [Int]) -> Tensor {
        let c = config.hiddenSize
        for id in ids {
            precondition(id >= 0 && id < config.vocabSize, "embed: token id \(id) outside 0..<\(config.vocabSize)")
        }
        return Tensor(
            shape: [ids.count, c],
            overwrittenBy: { out in
                for (t, id) in ids.enumerated() { embedding.copyRow(id, into: out.baseAddress! + t * c) }
            })
    }

    /// The decoder stack over input embeddings x (T, C) at `positions` (T), attention by `core`. Returns the
    /// final normed hidden states (T, C); `layerOutputs`, when given, receives every decoder layer's output.
    public func hiddenStates(
        _ x: Tensor, positions: [Int], core: inout some AttentionCore, compute: Compute = .fast,
        layerOutputs: ((Int, Tensor) -> Void)? = nil
    ) -> Tensor {
        let (cos, sin) = rope.cosSin(positions: positions)
        var h = x
        for (i, layer) in layers.enumerated() {
            layer(&h, rope: rope, cos: cos, sin: sin, layer: i, core: &core, compute: compute)
            layerOutputs?(i, h)
        }
        return norm(h)
    }

    /// Runs the decoder over input embeddings (T, C) at positions cache.count … (or 0 … without a cache),
    /// appending to `cache` when given. Long prompts on the fast path take the row-split prefill (the same
    /// layer body, rows split over `compute.threads` workers). Returns the final normed hidden states (T, C).
    public func hiddenStates(
        _ inputsEmbeds: Tensor, cache: inout KVCache?, compute: Compute = .fast,
        layerOutputs: ((Int, Tensor) -> Void)? = nil
    ) -> Tensor {
        let t = inputsEmbeds.shape[0], start = cache?.count ?? 0
        let workers = Qwen2ForCausalLM.rowSplitWorkers(tokens: t, threads: compute.threads)
        if rowSplitPrefill, !compute.isReference, t >= Qwen2ForCausalLM.minimumRowsPerWorker, start == 0,
            layerOutputs == nil
        {
            let r = hiddenStatesRowSplit(inputsEmbeds, workers: workers)
            if cache != nil {
                for i in layers.indices {
                    cache!.layers[i].append(headMajorKeys: r.keys[i], values: r.values[i], tokens: t)
                }
            }
            return r.h
        }
        let positions = Array(start..<(start + t))
        guard let given = cache else {
            var core = CausalAttention()
            return hiddenStates(
                inputsEmbeds, positions: positions, core: &core, compute: compute, layerOutputs: layerOutputs)
        }
        cache = nil // the core owns the only copy while it appends in place
        var core = CachedAttention(cache: consume given)
        let h = hiddenStates(
            inputsEmbeds, positions: positions, core: &core, compute: compute, layerOutputs: layerOutputs)
        cache = core.cache
        return h
    }

    /// Logits (T, V) for token ids (T), continuing `cache` if given. `lastOnly`: only the last row (1, V).
    public func forward(
        _ ids: [Int], cache: inout KVCache?, lastOnly: Bool = false, compute: Compute = .fast,
        layerOutputs: ((Int, Tensor) -> Void)? = nil
    ) -> Tensor {
        let h = hiddenStates(embed(ids), cache: &cache, compute: compute, layerOutputs: layerOutputs)
        let rows = lastOnly ? h.slice(dim: 0, (h.shape[0] - 1)..<h.shape[0]) : h
        return lmHead(rows, compute: compute)
    }

    /// Logits (T, V) for `ids` without a cache.
    public func logits(_ ids: [Int], compute: Compute = .fast) -> Tensor {
        var none: KVCache? = nil
        return forward(ids, cache: &none, compute: compute)
    }

    /// An empty cache for this model.
    public func makeCache(capacity: Int = 256) -> KVCache {
        KVCache(
            layers: config.numHiddenLayers, kvHeads: config.numKeyValueHeads, headDim: config.headDim,
            capacity: capacity)
    }
}
