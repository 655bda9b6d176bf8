// The checkpoint check: every tensor Eagle 2.5 needs, by name and shape, from the config alone (spec 7.2).
// Comparing this list with the checkpoint before loading anything turns "a wrong or truncated
// checkpoint" into one error that lists every missing, unexpected and mis-shaped tensor, instead of
// failing at the first one. Vision keys may sit under `vision_model.vision_model.` (released) or
// `vision_model.` (transformers 5.x); the pooling head (`head.*`) and rotary caches are ignored.
import SafeTensors
import SigLIP2

public enum EagleWeights {
    /// Name → shape of every tensor the model reads, with the vision tower under `visionPrefix`.
    public static func expected(_ c: EagleConfig, visionPrefix: String) -> [String: [Int]] {
        var e = [String: [Int]]()
        let v = c.vision, cv = v.hidden_size, m = v.intermediate_size, p = v.patch_size
        let vp = visionPrefix
        e[vp + "embeddings.patch_embedding.weight"] = [cv, v.num_channels, p, p]
        e[vp + "embeddings.patch_embedding.bias"] = [cv]
        e[vp + "embeddings.position_embedding.weight"] = [v.numPositions, cv]
        for i in 0..<v.num_hidden_layers {
            let l = vp + "encoder.layers.\(i)."
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                e[l + "self_attn.\(proj).weight"] = [cv, cv]
                e[l + "self_attn.\(proj).bias"] = [cv]
            }
            for n in ["layer_norm1", "layer_norm2"] { e[l + n + ".weight"] = [cv]; e[l + n + ".bias"] = [cv] }
            e[l + "mlp.fc1.weight"] = [m, cv]; e[l + "mlp.fc1.bias"] = [m]
            e[l + "mlp.fc2.weight"] = [cv, m]; e[l + "mlp.fc2.bias"] = [cv]
        }
        e[vp + "post_layernorm.weight"] = [cv]; e[vp + "post_layernorm.bias"] = [cv]

        let t = c.text, cl = t.hiddenSize, k = cv * 4
        e["mlp1.0.weight"] = [k]; e["mlp1.0.bias"] = [k]
        e["mlp1.1.weight"] = [cl, k]; e["mlp1.1.bias"] = [cl]
        e["mlp1.3.weight"] = [cl, cl]; e["mlp1.3.bias"] = [cl]

        let lp = "language_model.model.", hd = t.headDim
        e[lp + "embed_tokens.weight"] = [t.vocabSize, cl]
        for i in 0..<t.numHiddenLayers {
            let l = lp + "layers.\(i)."
            e[l + "self_attn.q_proj.weight"] = [t.numAttentionHeads * hd, cl]; e[l + "self_attn.q_proj.bias"] = [t.numAttentionHeads * hd]
            e[l + "self_attn.k_proj.weight"] = [t.numKeyValueHeads * hd, cl]; e[l + "self_attn.k_proj.bias"] = [t.numKeyValueHeads * hd]
            e[l + "self_attn.v_proj.weight"] = [t.numKeyValueHeads * hd, cl]; e[l + "self_attn.v_proj.bias"] = [t.numKeyValueHeads * hd]
            e[l + "self_attn.o_proj.weight"] = [cl, t.numAttentionHeads * hd]
            e[l + "mlp.gate_proj.weight"] = [t.intermediateSize, cl]; e[l + "mlp.up_proj.weight"] = [t.intermediateSize, cl]
            e[l + "mlp.down_proj.weight"] = [cl, t.intermediateSize]
            e[l + "input_layernorm.weight"] = [cl]; e[l + "post_attention_layernorm.weight"] = [cl]
        }
        e[lp + "norm.weight"] = [cl]
        e["language_model.lm_head.weight"] = [t.vocabSize, cl]
        return e
    }

    /// Compares the checkpoint with `expected`; throws one `EagleError.weights` listing every problem.
    public static func check(_ checkpoint: Checkpoint, config c: EagleConfig) throws {
        let names = checkpoint.names
        let prefix = VisionWeightNames.prefixes.first { p in names.contains(p + "embeddings.patch_embedding.weight") }
            ?? VisionWeightNames.prefixes[0]
        var want = expected(c, visionPrefix: prefix)
        if c.text.tieWordEmbeddings {
            // tied: one tensor, stored under either name
            let head = "language_model.lm_head.weight", embed = "language_model.model.embed_tokens.weight"
            if names.contains(head) && !names.contains(embed) { want[embed] = nil } else { want[head] = nil }
        }
        var missing = [String](), misshaped = [String](), unexpected = [String]()
        let have = Set(names)
        for (name, shape) in want.sorted(by: { $0.key < $1.key }) {
            guard have.contains(name), let info = checkpoint.info(name) else { missing.append(name); continue }
            if info.shape != shape { misshaped.append("\(name) is \(info.shape), expected \(shape)") }
        }
        for name in names.sorted() where want[name] == nil {
            if name.hasPrefix(prefix + "head.") || name.hasSuffix("rotary_emb.inv_freq") { continue }
            unexpected.append(name)
        }
        if !missing.isEmpty || !misshaped.isEmpty || !unexpected.isEmpty {
            throw EagleError.weights(source: checkpoint.directory, missing: missing, unexpected: unexpected, misshaped: misshaped)
        }
    }

    /// Names of the floating-point tensors holding NaN or ±Inf, in name order (at most `limit`).
    /// Reads the stored bits (F32, BF16, F16, F64) without widening: a value is non-finite when its
    /// exponent field is all ones.
    public static func nonFiniteTensors(_ checkpoint: Checkpoint, limit: Int = 11) throws -> [String] {
        var bad = [String]()
        for name in checkpoint.names {
            guard let info = checkpoint.info(name), info.dtype.isFloatingPoint else { continue }
            let found = try checkpoint.file(for: name).withRawBytes(name) { raw -> Bool in
                let n = info.elementCount
                switch info.dtype {
                case .f32: return (0..<n).contains { raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self).littleEndian & 0x7F80_0000 == 0x7F80_0000 }
                case .bf16: return (0..<n).contains { raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self).littleEndian & 0x7F80 == 0x7F80 }
                case .f16: return (0..<n).contains { raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self).littleEndian & 0x7C00 == 0x7C00 }
                default: return (0..<n).contains { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self).littleEndian & 0x7FF0_0000_0000_0000 == 0x7FF0_0000_0000_0000 }
                }
            }
            if found { bad.append(name); if bad.count >= limit { break } }
        }
        return bad
    }
}
