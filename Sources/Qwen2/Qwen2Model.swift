// The Qwen2 decoder: RMSNorm, the SwiGLU MLP, the decoder layer, the model and its LM head, and greedy
// generation with a KV cache (transformers `modeling_qwen2.py`, spec §5).
//
// What it is, for token ids (T) at positions p (T):
//     h₀ = embed_tokens[ids]                                                      (T, C)
//     per layer:  h ← h + self_attn(input_layernorm(h), p)
//                 h ← h + mlp(post_attention_layernorm(h)),  mlp(x) = down(silu(gate(x)) ⊙ up(x))
//     logits = lm_head(norm(h))                                                   (T, V)
// RMSNorm(x) = x / √(mean(x²) + eps) · weight with fp32 statistics (Eaglet accumulates in Double).
// Names mirror the checkpoint: embed_tokens, layers.N.{self_attn, mlp, input_layernorm,
// post_attention_layernorm}, norm, lm_head. With tied embeddings lm_head shares embed_tokens' storage.
// What it is not: batched (one sequence at a time), sampling beyond greedy, or a trainer.
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
    public let gate_proj: Linear
    public let up_proj: Linear
    public let down_proj: Linear
    public init(gate_proj: Linear, up_proj: Linear, down_proj: Linear) {
        self.gate_proj = gate_proj; self.up_proj = up_proj; self.down_proj = down_proj
    }
    /// x (T, C) → down(silu(gate(x)) ⊙ up(x)) (T, C).
    public func callAsFunction(_ x: Tensor, naive: Bool = false) -> Tensor {
        var g: Tensor, u: Tensor
        if x.count == gate_proj.inFeatures && !naive && !Linear.useBLASGemv {   // decode: one pass for both
            let r = gemvGroup([gate_proj, up_proj], x, threads: BLAS.threads)
            (g, u) = (r[0], r[1])
        } else {
            g = gate_proj(x, naive: naive); u = up_proj(x, naive: naive)
        }
        g.storage.withUnsafeMutableBufferPointer { G in
            u.storage.withUnsafeBufferPointer { U in
                for i in 0..<G.count { G[i] = silu(G[i]) * U[i] }
            }
        }
        return down_proj(g, naive: naive)
    }
}

/// `Qwen2DecoderLayer`: pre-norm attention and MLP, each with a residual.
public struct Qwen2DecoderLayer: Sendable {
    public let self_attn: Qwen2Attention
    public let mlp: Qwen2MLP
    public let input_layernorm: Qwen2RMSNorm
    public let post_attention_layernorm: Qwen2RMSNorm

    public init(self_attn: Qwen2Attention, mlp: Qwen2MLP, input_layernorm: Qwen2RMSNorm, post_attention_layernorm: Qwen2RMSNorm) {
        self.self_attn = self_attn; self.mlp = mlp
        self.input_layernorm = input_layernorm; self.post_attention_layernorm = post_attention_layernorm
    }

    /// h (T, C) → (T, C).
    public func callAsFunction(_ h: Tensor, rope: RotaryEmbedding, cos: Tensor, sin: Tensor,
                               cache: inout KVCacheLayer?, path: AttentionPath = .blockwise) -> Tensor {
        var x = h + self_attn(input_layernorm(h), rope: rope, cos: cos, sin: sin, cache: &cache, path: path)
        let m = mlp(post_attention_layernorm(x), naive: path == .naive)
        x.storage.withUnsafeMutableBufferPointer { X in
            m.storage.withUnsafeBufferPointer { M in for i in 0..<X.count { X[i] += M[i] } }
        }
        return x
    }
}

/// `Qwen2ForCausalLM`: the model (`model.*`) and the LM head.
public struct Qwen2ForCausalLM: Sendable {
    public let config: Qwen2Config
    public let embed_tokens: Tensor            // (V, C)
    public let layers: [Qwen2DecoderLayer]
    public let norm: Qwen2RMSNorm
    public let lm_head: Linear                 // weight (V, C); shares embed_tokens' storage when tied
    public let rope: RotaryEmbedding
    /// Which attention implementation `forward` runs.
    public var attentionPath: AttentionPath = .blockwise
    /// Prefill long prompts with the rows split over the BLAS thread count (RowSplitPrefill.swift).
    public var rowSplitPrefill = true

    public init(config: Qwen2Config, embed_tokens: Tensor, layers: [Qwen2DecoderLayer], norm: Qwen2RMSNorm, lm_head: Linear) {
        self.config = config; self.embed_tokens = embed_tokens; self.layers = layers; self.norm = norm
        self.lm_head = lm_head
        rope = RotaryEmbedding(headDim: config.headDim, theta: config.ropeTheta)
    }

    /// Rows of embed_tokens for `ids` (T) → (T, C). Ids outside 0..<V are a programmer error here;
    /// `generateGreedy` validates user ids first.
    public func embed(_ ids: [Int]) -> Tensor {
        let c = config.hiddenSize
        var out = [Float](repeating: 0, count: ids.count * c)
        embed_tokens.storage.withUnsafeBufferPointer { E in
            for (t, id) in ids.enumerated() {
                precondition(id >= 0 && id < config.vocabSize, "embed: token id \(id) outside 0..<\(config.vocabSize)")
                for j in 0..<c { out[t * c + j] = E[id * c + j] }
            }
        }
        return Tensor(shape: [ids.count, c], storage: out)
    }

    /// Runs the decoder over input embeddings (T, C) at positions cache.count … (or 0 … without a
    /// cache). Returns the final normed hidden states (T, C); `layerOutputs`, when given, receives the
    /// output of every decoder layer.
    public func hiddenStates(_ inputsEmbeds: Tensor, cache: inout KVCache?, layerOutputs: ((Int, Tensor) -> Void)? = nil) -> Tensor {
        let t = inputsEmbeds.shape[0]
        let start = cache?.count ?? 0
        let workers = Qwen2ForCausalLM.rowSplitWorkers(tokens: t, threads: BLAS.threads)
        if rowSplitPrefill, t >= Qwen2ForCausalLM.minimumRowsPerWorker, start == 0, layerOutputs == nil, attentionPath == .blockwise {
            let r = hiddenStatesRowSplit(inputsEmbeds, workers: workers)
            if cache != nil {
                for i in layers.indices { cache!.layers[i].append(headMajorKeys: r.keys[i], values: r.values[i], tokens: t) }
            }
            return r.h
        }
        let (cos, sin) = rope.cosSin(positions: Array(start..<(start + t)))
        var h = inputsEmbeds
        for (i, layer) in layers.enumerated() {
            var layerCache: KVCacheLayer? = nil
            if cache != nil {   // move the layer's cache out (leaving a 1-row placeholder) so appending copies nothing
                layerCache = cache!.layers[i]
                cache!.layers[i] = KVCacheLayer(kvHeads: 1, headDim: 2, capacity: 1)
            }
            h = layer(h, rope: rope, cos: cos, sin: sin, cache: &layerCache, path: attentionPath)
            if cache != nil, let lc = layerCache { cache!.layers[i] = lc }
            layerOutputs?(i, h)
        }
        return norm(h)
    }

    /// Logits (T, V) for token ids (T), continuing `cache` if given. `lastOnly`: only the last row (1, V).
    public func forward(_ ids: [Int], cache: inout KVCache?, lastOnly: Bool = false,
                        layerOutputs: ((Int, Tensor) -> Void)? = nil) -> Tensor {
        let h = hiddenStates(embed(ids), cache: &cache, layerOutputs: layerOutputs)
        let rows = lastOnly ? h.slice(dim: 0, (h.shape[0] - 1)..<h.shape[0]) : h
        return lm_head(rows, naive: attentionPath == .naive)
    }

    /// Logits (T, V) for `ids` without a cache.
    public func logits(_ ids: [Int]) -> Tensor {
        var none: KVCache? = nil
        return forward(ids, cache: &none)
    }

    /// An empty cache for this model.
    public func makeCache(capacity: Int = 256) -> KVCache {
        KVCache(layers: config.numHiddenLayers, kvHeads: config.numKeyValueHeads, headDim: config.headDim, capacity: capacity)
    }

    /// Greedy decoding: prefill `prompt`, then append argmax tokens one at a time through the KV cache
    /// until `maxNewTokens` or a token in `stopTokens`. Returns the new tokens.
    public func generateGreedy(prompt: [Int], maxNewTokens: Int, stopTokens: Set<Int> = []) throws -> [Int] {
        guard !prompt.isEmpty else { throw Qwen2Error.badField("prompt", "is empty") }
        if let bad = prompt.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw Qwen2Error.badField("prompt", "holds token id \(bad), outside 0..<\(config.vocabSize)")
        }
        var cache: KVCache? = makeCache(capacity: prompt.count + maxNewTokens)
        var next = argmax(forward(prompt, cache: &cache, lastOnly: true).storage)
        var out = [Int]()
        while out.count < maxNewTokens {
            out.append(next)
            if stopTokens.contains(next) || out.count == maxNewTokens { break }
            next = argmax(forward([next], cache: &cache, lastOnly: true).storage)
        }
        return out
    }
}

/// Index of the largest value (the first one on ties, as torch.argmax).
public func argmax(_ x: [Float]) -> Int {
    var best = 0
    for i in 1..<max(x.count, 1) where x[i] > x[best] { best = i }
    return best
}
