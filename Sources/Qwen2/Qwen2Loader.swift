// Qwen2's parameters, declared once, and the loader derived from them (docs/spec.md §7.2).
//
// What it is: `Qwen2Parameters`, every tensor of the decoder as (checkpoint key, shape) built from the config
// under a key prefix — `language_model.` (Eagle 2.5) or "" (a Qwen2 checkpoint), found from where
// `embed_tokens` (or, tied, `lm_head`) lives. The loader reads each spec through a `WeightStore` (shape
// checked, errors naming the tensor); Eagle's checkpoint check compares the same specs with the file. With
// tie_word_embeddings the head may be stored as either `lm_head.weight` or `model.embed_tokens.weight`; one
// tensor then serves both.
// The decoder's seven projections, the embedding and the LM head are declared `native`: with `WeightFormat.native`
// their BF16 weights stay in the mapped checkpoint and the products read them in place (Tensor/BF16Matrix.swift);
// `.bf16` narrows other dtypes, `.q8_0` quantizes them at load (Tensor/Q8Matrix.swift); everything else is widened.
// What it is not: a converter.
import SafeTensors
import QwenAttention
import Tensor

/// Keys and shapes of one decoder layer, under `<prefix>model.layers.N.`.
public struct Qwen2LayerParameters: ParameterGroup {
    public let qProj, kProj, vProj, oProj: LinearParameters
    public let gateProj, upProj, downProj: LinearParameters
    public let inputLayernorm, postAttentionLayernorm: NormParameters

    public init(_ c: Qwen2Config, base l: String) {
        let (C, H, Hkv, D, I) = (c.hiddenSize, c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.intermediateSize)
        qProj = LinearParameters(l + "self_attn.q_proj", out: H * D, in: C, bias: true, weightDType: .native)
        kProj = LinearParameters(l + "self_attn.k_proj", out: Hkv * D, in: C, bias: true, weightDType: .native)
        vProj = LinearParameters(l + "self_attn.v_proj", out: Hkv * D, in: C, bias: true, weightDType: .native)
        oProj = LinearParameters(l + "self_attn.o_proj", out: C, in: H * D, bias: false, weightDType: .native)
        gateProj = LinearParameters(l + "mlp.gate_proj", out: I, in: C, bias: false, weightDType: .native)
        upProj = LinearParameters(l + "mlp.up_proj", out: I, in: C, bias: false, weightDType: .native)
        downProj = LinearParameters(l + "mlp.down_proj", out: C, in: I, bias: false, weightDType: .native)
        inputLayernorm = NormParameters(l + "input_layernorm", width: C, bias: false)
        postAttentionLayernorm = NormParameters(l + "post_attention_layernorm", width: C, bias: false)
    }
}

/// Every tensor of `Qwen2ForCausalLM` under `prefix`.
public struct Qwen2Parameters: ParameterGroup {
    /// `model.embed_tokens.weight` (V, C); tied, it may be stored as `lm_head.weight` instead.
    public let embedTokens: ParameterSpec
    public let layers: [Qwen2LayerParameters]
    public let norm: NormParameters
    /// `lm_head.weight` (V, C); nil when tied (the embedding serves).
    public let lmHead: ParameterSpec?

    /// Prefixes a checkpoint may hold the model under: Eagle 2.5's, then a plain Qwen2 checkpoint's.
    public static let prefixes = ["language_model.", ""]

    public init(_ c: Qwen2Config, prefix p: String) {
        let (C, V) = (c.hiddenSize, c.vocabSize)
        embedTokens = ParameterSpec(
            p + "model.embed_tokens.weight", [V, C],
            alternateKey: c.tieWordEmbeddings ? p + "lm_head.weight" : nil, dtype: .native)
        layers = (0..<c.numHiddenLayers).map { Qwen2LayerParameters(c, base: p + "model.layers.\($0).") }
        norm = NormParameters(p + "model.norm", width: C, bias: false)
        lmHead = c.tieWordEmbeddings ? nil : ParameterSpec(p + "lm_head.weight", [V, C], dtype: .native)
    }

    /// The prefix under which `store` holds the model, or nil.
    public static func prefix(in store: WeightStore) -> String? {
        prefixes.first { store.contains($0 + "model.embed_tokens.weight") || store.contains($0 + "lm_head.weight") }
    }
}

extension Linear.Weight {
    /// Reads `spec` through `store`, held as `store.held(spec)` says: BF16 read in place, a narrowed BF16 copy,
    /// q8_0 quantized from the stored rows a panel at a time (a BF16 matrix is never widened whole), or fp32.
    public init(_ spec: ParameterSpec, from store: WeightStore) throws {
        switch store.held(spec) {
        case .bf16InPlace:
            if let m = try store.readBF16(spec) { self = .bf16(m); return }
        case .bf16Narrowed:
            self = .bf16(BF16Matrix(narrowing: try store.read(spec)))
            return
        case .q8_0:
            let threads = BLAS.defaultThreads
            if let m = try store.readBF16(spec) {
                self = .q8_0(Q8Matrix(quantizing: m, threads: threads))
                store.release(spec) // the BF16 pages were read once; the blocks are what decode reads
            } else {
                self = .q8_0(Q8Matrix(quantizing: try store.read(spec), threads: threads))
            }
            return
        case .float32: break
        }
        self = .f32(try store.read(spec))
    }
}

extension Linear {
    /// Reads `p`'s weight (see `Linear.Weight.init(_:from:)`) and bias through `store`.
    public init(_ p: LinearParameters, from store: WeightStore) throws {
        self.init(stored: try Weight(p.weight, from: store), bias: try store.read(p.bias))
    }
}

extension Qwen2ForCausalLM {
    /// Builds the model from `store`, under the prefix the store holds it (Eagle 2.5 or plain Qwen2 layout).
    public static func load(config c: Qwen2Config, store: WeightStore) throws -> Qwen2ForCausalLM {
        guard let prefix = Qwen2Parameters.prefix(in: store) else {
            throw CheckpointError.componentNotFound(
                source: store.source.sourceDescription, component: "language model",
                tried: Qwen2Parameters.prefixes.map { $0 + "model.embed_tokens.weight" })
        }
        let p = Qwen2Parameters(c, prefix: prefix)
        func norm(_ n: NormParameters) throws -> Qwen2RMSNorm {
            Qwen2RMSNorm(weight: try store.read(n.weight), eps: c.rmsNormEps)
        }
        let embed = try Linear.Weight(p.embedTokens, from: store)
        let head = try p.lmHead.map { try Linear.Weight($0, from: store) } ?? embed // tied: one storage, no copy
        let layers = try p.layers.map { l in
            Qwen2DecoderLayer(
                selfAttn: Qwen2Attention(
                    qProj: try Linear(l.qProj, from: store), kProj: try Linear(l.kProj, from: store),
                    vProj: try Linear(l.vProj, from: store), oProj: try Linear(l.oProj, from: store),
                    numHeads: c.numAttentionHeads, numKeyValueHeads: c.numKeyValueHeads, headDim: c.headDim),
                mlp: Qwen2MLP(
                    gateProj: try Linear(l.gateProj, from: store), upProj: try Linear(l.upProj, from: store),
                    downProj: try Linear(l.downProj, from: store)),
                inputLayernorm: try norm(l.inputLayernorm), postAttentionLayernorm: try norm(l.postAttentionLayernorm))
        }
        return Qwen2ForCausalLM(
            config: c, embedding: embed, layers: layers, norm: try norm(p.norm), lmHead: Linear(stored: head))
    }

    /// Loads from a checkpoint (one file or shards), Eagle 2.5 or plain Qwen2 key layout.
    public static func load(config: Qwen2Config, checkpoint: Checkpoint) throws -> Qwen2ForCausalLM {
        try load(config: config, store: WeightStore(checkpoint))
    }
}
