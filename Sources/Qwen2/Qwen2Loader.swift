// Loading Qwen2 weights: the one place that maps checkpoint keys onto the module tree (spec §7.2).
//
// What it is: keys under `language_model.model.*` + `language_model.lm_head.weight` (Eagle 2.5) or
// plain `model.*` + `lm_head.weight` (a Qwen2 checkpoint); the prefix is found from where
// `embed_tokens` (or, tied, `lm_head`) lives. With tie_word_embeddings the head may be stored as either
// `lm_head.weight` or `model.embed_tokens.weight`; one tensor then serves both. Every tensor's shape is
// checked against the config; a missing or mis-shaped tensor is a typed error naming it.
// What it is not: a converter; dtypes are widened to Float32 by SafeTensors.
import SafeTensors
import QwenAttention
import Tensor

extension Qwen2ForCausalLM {
    /// The key prefix ("language_model." or "") under which `has` finds the model.
    public static func keyPrefix(has: (String) -> Bool) -> String? {
        for p in ["language_model.", ""] where has(p + "model.embed_tokens.weight") || has(p + "lm_head.weight") {
            return p
        }
        return nil
    }

    /// Builds the model from a tensor source: `has(name)` says whether it holds a tensor, `tensor(name)`
    /// reads it (widened to Float32).
    public static func load(config: Qwen2Config, has: (String) -> Bool,
                            tensor: (String) throws -> Tensor) throws -> Qwen2ForCausalLM {
        let c = config
        guard let p = keyPrefix(has: has) else { throw Qwen2Error.missingTensor("model.embed_tokens.weight (or language_model.model.embed_tokens.weight)") }
        func get(_ name: String, _ shape: [Int]) throws -> Tensor {
            guard has(p + name) else { throw Qwen2Error.missingTensor(p + name) }
            let t = try tensor(p + name)
            guard t.shape == shape else { throw Qwen2Error.wrongShape(tensor: p + name, expected: shape, found: t.shape) }
            return t
        }
        func optional(_ name: String, _ shape: [Int]) throws -> Tensor? {
            guard has(p + name) else { return nil }
            let t = try tensor(p + name)
            guard t.shape == shape else { throw Qwen2Error.wrongShape(tensor: p + name, expected: shape, found: t.shape) }
            return t
        }
        let (C, V, H, Hkv, D, I) = (c.hiddenSize, c.vocabSize, c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.intermediateSize)
        let embed: Tensor, head: Tensor
        if c.tieWordEmbeddings {
            let e = try optional("model.embed_tokens.weight", [V, C]), l = try optional("lm_head.weight", [V, C])
            guard let w = e ?? l else { throw Qwen2Error.missingTensor(p + "model.embed_tokens.weight (tied; or \(p)lm_head.weight)") }
            embed = w; head = w                                   // one storage, no copy
        } else {
            embed = try get("model.embed_tokens.weight", [V, C])
            head = try get("lm_head.weight", [V, C])
        }
        var layers = [Qwen2DecoderLayer]()
        for i in 0..<c.numHiddenLayers {
            let l = "model.layers.\(i)."
            let attn = Qwen2Attention(
                q_proj: Linear(weight: try get(l + "self_attn.q_proj.weight", [H * D, C]), bias: try get(l + "self_attn.q_proj.bias", [H * D])),
                k_proj: Linear(weight: try get(l + "self_attn.k_proj.weight", [Hkv * D, C]), bias: try get(l + "self_attn.k_proj.bias", [Hkv * D])),
                v_proj: Linear(weight: try get(l + "self_attn.v_proj.weight", [Hkv * D, C]), bias: try get(l + "self_attn.v_proj.bias", [Hkv * D])),
                o_proj: Linear(weight: try get(l + "self_attn.o_proj.weight", [C, H * D])),
                numHeads: H, numKeyValueHeads: Hkv, headDim: D)
            let mlp = Qwen2MLP(gate_proj: Linear(weight: try get(l + "mlp.gate_proj.weight", [I, C])),
                               up_proj: Linear(weight: try get(l + "mlp.up_proj.weight", [I, C])),
                               down_proj: Linear(weight: try get(l + "mlp.down_proj.weight", [C, I])))
            layers.append(Qwen2DecoderLayer(
                self_attn: attn, mlp: mlp,
                input_layernorm: Qwen2RMSNorm(weight: try get(l + "input_layernorm.weight", [C]), eps: c.rmsNormEps),
                post_attention_layernorm: Qwen2RMSNorm(weight: try get(l + "post_attention_layernorm.weight", [C]), eps: c.rmsNormEps)))
        }
        let norm = Qwen2RMSNorm(weight: try get("model.norm.weight", [C]), eps: c.rmsNormEps)
        return Qwen2ForCausalLM(config: c, embed_tokens: embed, layers: layers, norm: norm, lm_head: Linear(weight: head))
    }

    /// Loads from a checkpoint (one file or shards), Eagle 2.5 or plain Qwen2 key layout.
    public static func load(config: Qwen2Config, checkpoint: Checkpoint) throws -> Qwen2ForCausalLM {
        try load(config: config, has: { checkpoint.info($0) != nil }, tensor: { try checkpoint.tensor($0) })
    }
}
