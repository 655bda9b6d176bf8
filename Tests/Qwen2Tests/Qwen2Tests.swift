// Qwen2 against transformers' Qwen2ForCausalLM (Fixtures/qwen2-lm, from Fixtures/generate/qwen2_lm.py):
// every layer's output, the final norm and the logits for three prompts per config; prefix + three
// KV-cached steps; the config decoder on real and hand-written JSON; the loader's typed errors.
import Foundation
import QwenAttention
import Qwen2
import SafeTensors
import Tensor
import Testing
import _TestSupport

func loadTiny(_ which: String, _ f: Fixture) throws -> Qwen2ForCausalLM {
    let config = try Qwen2Config.load(path: f.path("\(which).config.json"))
    return try Qwen2ForCausalLM.load(config: config, checkpoint: try Checkpoint(path: f.path("\(which).safetensors")))
}

@Suite struct Qwen2MatchesTransformers {
    let f: Fixture
    init() throws { f = try Fixture.load("qwen2-lm") }

    @Test(arguments: ["a", "b"], [Compute.fast, .reference])
    func layerOutputsAndLogitsMatchTransformers(which: String, path: Compute) throws {
        let model = try loadTiny(which, f)
        var worst: Float = 0
        for p in 0..<3 {
            let ids = try f.file.integers("\(which).p\(p).input_ids").values.map { Int($0) }
            var layers = [Int: Tensor]()
            var none: KVCache? = nil
            let h = model.hiddenStates(model.embed(ids), cache: &none, compute: path) { i, t in layers[i] = t }
            for i in 0..<model.config.numHiddenLayers {
                let r = assertClose(
                    layers[i]!, try f.tensor("\(which).p\(p).layer\(i)"), .fp32Block,
                    "\(which) p\(p) layer \(i) \(path)")
                worst = max(worst, r.maxRelative)
            }
            assertClose(h, try f.tensor("\(which).p\(p).norm"), .fp32Block, "\(which) p\(p) norm")
            let r = assertClose(
                model.logits(ids, compute: path), try f.tensor("\(which).p\(p).logits"), .fp32Block,
                "\(which) p\(p) logits \(path)")
            worst = max(worst, r.maxRelative)
        }
        print("qwen2 \(which) \(path): worst max relative error vs transformers \(worst)")
    }

    @Test(arguments: ["a", "b"])
    func cachedStepsMatchTransformersAndFullSequence(which: String) throws {
        let model = try loadTiny(which, f)
        let ids = try f.file.integers("\(which).p2.input_ids").values.map { Int($0) }
        let prefix = Array(ids.dropLast(3))
        var cache: KVCache? = model.makeCache(capacity: 4) // small: forces the cache to grow
        let prefixLogits = model.forward(prefix, cache: &cache)
        assertClose(prefixLogits, try f.tensor("\(which).cached.prefix_logits"), .fp32Block, "prefix")
        let full = model.logits(ids)
        for s in 0..<3 {
            let step = model.forward([ids[prefix.count + s]], cache: &cache)
            assertClose(step, try f.tensor("\(which).cached.step\(s)_logits"), .fp32Block, "step \(s) vs transformers")
            let r = assertClose(
                step, full.slice(dim: 0, (prefix.count + s)..<(prefix.count + s + 1)), .fp32Block,
                "step \(s) vs full sequence")
            #expect(r.maxRelative <= 1e-4)
        }
        #expect(cache?.count == ids.count)
    }

    /// The row-split prefill (RowSplitPrefill.swift) with 1–3 workers against transformers, and its keys
    /// and values, appended to a cache, continue decoding exactly like the serial prefill's.
    @Test(arguments: ["a", "b"], [1, 2, 3])
    func rowSplitPrefillMatchesTransformers(which: String, workers: Int) throws {
        var model = try loadTiny(which, f)
        for p in 0..<3 {
            let ids = try f.file.integers("\(which).p\(p).input_ids").values.map { Int($0) }
            guard ids.count >= workers else { continue }
            let r = model.hiddenStatesRowSplit(model.embed(ids), workers: workers)
            assertClose(r.h, try f.tensor("\(which).p\(p).norm"), .fp32Block, "\(which) p\(p) norm, \(workers) workers")
            assertClose(
                model.lmHead(r.h), try f.tensor("\(which).p\(p).logits"), .fp32Block,
                "\(which) p\(p) logits, \(workers) workers")
        }
        // Prefill through the cache with the split forced (as hiddenStates does at 2 BLAS threads), then cached steps.
        let ids = try f.file.integers("\(which).p2.input_ids").values.map { Int($0) }
        let prefix = Array(ids.dropLast(3))
        guard prefix.count >= workers else { return }
        var cache: KVCache? = model.makeCache(capacity: 4)
        let r = model.hiddenStatesRowSplit(model.embed(prefix), workers: workers)
        for i in 0..<model.config.numHiddenLayers {
            cache!.layers[i].append(headMajorKeys: r.keys[i], values: r.values[i], tokens: prefix.count)
        }
        model.rowSplitPrefill = false
        for s in 0..<3 {
            let step = model.forward([ids[prefix.count + s]], cache: &cache)
            assertClose(
                step, try f.tensor("\(which).cached.step\(s)_logits"), .fp32Block,
                "step \(s) after a \(workers)-worker prefill")
        }
    }

    @Test func greedyDecodeMatchesArgmaxOfFullForward() throws {
        let model = try loadTiny("a", f)
        let prompt = [3, 17, 200, 5]
        let new = try model.generateGreedy(prompt: prompt, maxNewTokens: 5)
        // Re-derive each token from an uncached full forward (no cache at all).
        var seq = prompt
        for tok in new {
            let logits = model.logits(seq)
            #expect(argmax(logits.row(seq.count - 1).storage) == tok)
            seq.append(tok)
        }
        #expect(throws: Qwen2Error.self) { try model.generateGreedy(prompt: [211], maxNewTokens: 1) }
    }
}

@Suite struct Qwen2ConfigDecoding {
    let base = """
          "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
          "intermediate_size": 4864, "rms_norm_eps": 1e-06, "vocab_size": 151936, "tie_word_embeddings": true,
          "max_position_embeddings": 32768
        """

    func decode(_ json: String) throws -> Qwen2Config { try Qwen2Config.decode(Data(json.utf8)) }

    @Test func decodesTransformers4RopeTheta() throws {
        let c = try decode(
            "{\(base), \"rope_theta\": 1000000.0, \"rope_scaling\": null, \"use_sliding_window\": false}")
        #expect(c.ropeTheta == 1_000_000 && c.headDim == 64 && c.numKeyValueHeads == 2 && c.tieWordEmbeddings)
    }

    @Test func decodesTransformers5RopeParametersInsideEagleConfig() throws {
        let c = try decode(
            "{\"model_type\": \"eagle_2_5_vl\", \"text_config\": {\(base), \"rope_parameters\": {\"rope_theta\": 5000.0, \"rope_type\": \"default\"}}}"
        )
        #expect(c.ropeTheta == 5000 && c.hiddenSize == 896)
    }

    @Test func decodesRealTransformersDump() throws {
        let f = try Fixture.load("qwen2-lm")
        let c = try Qwen2Config.load(path: f.path("a.config.json"))
        #expect(
            c
                == Qwen2Config(
                    hiddenSize: 64, numHiddenLayers: 3, numAttentionHeads: 8, numKeyValueHeads: 2,
                    intermediateSize: 45, rmsNormEps: 1e-6, vocabSize: 211, tieWordEmbeddings: false,
                    maxPositionEmbeddings: 4096, ropeTheta: 10000))
    }

    @Test func missingThetaIsAnError() {
        #expect(throws: Qwen2Error.missingField("rope_parameters.rope_theta (transformers 5.x) or rope_theta (4.x)")) {
            try decode("{\(base)}")
        }
    }

    @Test func scaledRopeIsAnError() {
        #expect(throws: Qwen2Error.unsupportedRope("rope_scaling has type 'yarn'")) {
            try decode("{\(base), \"rope_theta\": 1e6, \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}}")
        }
        #expect(throws: Qwen2Error.unsupportedRope("rope_parameters.rope_type is 'linear'")) {
            try decode(
                "{\(base), \"rope_parameters\": {\"rope_theta\": 1e6, \"rope_type\": \"linear\", \"factor\": 2.0}}")
        }
    }

    @Test func missingAndBadFieldsAreNamed() {
        #expect(throws: Qwen2Error.missingField("hidden_size")) {
            try decode("{\"num_hidden_layers\": 2, \"rope_theta\": 1e6}")
        }
        #expect(throws: Qwen2Error.badField("hidden_size", "is not a Int")) {
            try decode("{\"hidden_size\": \"big\", \"rope_theta\": 1e6}")
        }
    }
}

@Suite struct Qwen2LoaderErrors {
    let f: Fixture
    init() throws { f = try Fixture.load("qwen2-lm") }

    @Test func tiedHeadUnderEitherNameGivesTheSameLogits() throws {
        let config = try Qwen2Config.load(path: f.path("b.config.json"))
        let ck = try Checkpoint(path: f.path("b.safetensors"))
        let ids = [4, 100, 172, 9, 0]
        // Move embed_tokens to lm_head.weight: the loader must accept it there too.
        var moved = [String: Tensor]()
        for name in ck.names {
            moved[name == "model.embed_tokens.weight" ? "lm_head.weight" : name] = try ck.tensor(name)
        }
        let renamed = try Qwen2ForCausalLM.load(config: config, store: WeightStore(TensorDictionary(moved)))
        assertClose(renamed.logits(ids), try f.tensor("b.p0.logits"), .fp32Block, "tied head stored as lm_head.weight")
    }

    @Test func missingAndMisShapedTensorsAreNamed() throws {
        let config = try Qwen2Config.load(path: f.path("a.config.json"))
        let ck = try Checkpoint(path: f.path("a.safetensors"))
        func without(_ key: String) throws -> WeightStore {
            var all = [String: Tensor]()
            for name in ck.names where name != key { all[name] = try ck.tensor(name) }
            return WeightStore(TensorDictionary(all, description: "a.safetensors"))
        }
        #expect(
            throws: CheckpointError.missing(
                source: "a.safetensors", tensor: "language_model.model.layers.1.mlp.up_proj.weight")
        ) {
            try Qwen2ForCausalLM.load(
                config: config, store: try without("language_model.model.layers.1.mlp.up_proj.weight"))
        }
        #expect(throws: CheckpointError.missing(source: "a.safetensors", tensor: "language_model.lm_head.weight")) {
            try Qwen2ForCausalLM.load(config: config, store: try without("language_model.lm_head.weight"))
        }
        var wrong = config
        wrong.intermediateSize = 44
        #expect(
            throws: CheckpointError.wrongShape(
                source: ck.directory, tensor: "language_model.model.layers.0.mlp.gate_proj.weight",
                expected: [44, 64], found: [45, 64])
        ) {
            try Qwen2ForCausalLM.load(config: wrong, checkpoint: ck)
        }
    }
}
