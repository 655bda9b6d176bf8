// SigLIP2 encoder against transformers: the tiny fixed-resolution towers (every hidden state and the
// post-LN output), the NaFlex tower, and one So400m-width layer with seeded weights; plus naive vs
// fast, the checkpoint key mapping, the config decoder and the select_layer rule.
import Foundation
import Testing
import Tensor
import SafeTensors
import PatchEmbed
import SigLIP2
import _TestSupport

/// The fixture's weights are stored as "<tag>.vision_model.…": strip the tag to get a transformers
/// 5.x-style checkpoint, optionally renaming the prefix, and write it to a temporary file.
func writeCheckpoint(
    from f: Fixture, tag: String?, prefix: String, drop: String? = nil,
    reshape: (String, [Int])? = nil
) throws -> String {
    var w = SafeTensorsWriter()
    let lead = tag.map { "\($0).vision_model." } ?? "vision_model."
    for name in f.file.names where name.hasPrefix(lead) {
        let key = prefix + name.dropFirst(lead.count)
        if key == drop { continue }
        var t = try f.tensor(name)
        if let (k, s) = reshape, k == key { t = Tensor(shape: s, repeating: 0) }
        w.add(key, t)
    }
    let path = NSTemporaryDirectory() + "eaglet-vision-\(UUID().uuidString).safetensors"
    try w.write(to: path)
    return path
}

func tinyConfig(_ tag: String) throws -> SiglipVisionConfig {
    try SiglipVisionConfig.load(path: "\(repositoryRoot)/Fixtures/siglip-vision-tiny/config_\(tag).json")
}

/// The siglip-vision-tiny fixture and its tower `tag` (p14 or p16), loaded from a checkpoint in transformers 5.x key
/// names (the temporary file is gone once the tower is loaded).
func tinyTower(_ tag: String) throws -> (fixture: Fixture, tower: SiglipVisionTransformer) {
    let f = try Fixture.load("siglip-vision-tiny")
    let path = try writeCheckpoint(from: f, tag: tag, prefix: "vision_model.")
    defer { try? FileManager.default.removeItem(atPath: path) }
    return (f, try SiglipVisionTransformer.load(from: try Checkpoint(path: path), config: try tinyConfig(tag)))
}

@Suite struct SigLIP2MatchesTransformers {
    @Test(arguments: ["p14", "p16"])
    func everyLayerOfTinyTowerMatchesSiglipVisionModel(tag: String) throws {
        let (f, tower) = try tinyTower(tag)
        let pixels = try f.tensor("\(tag).pixel_values")
        var worst: Float = 0
        for b in 0..<pixels.shape[0] {
            for naive in [false, true] {
                let out = tower(pixels.row(b), compute: naive ? .reference : .fast)
                #expect(out.hiddenStates.count == 3)
                for (i, h) in out.hiddenStates.enumerated() {
                    let r = assertClose(
                        h, try f.tensor("\(tag).hidden_states.\(i)").row(b), .fp32Block,
                        "\(tag) image \(b) hidden_states[\(i)] naive=\(naive)")
                    worst = max(worst, r.maxRelative)
                }
                let r = assertClose(
                    out.lastHiddenState, try f.tensor("\(tag).last_hidden_state").row(b), .fp32Block,
                    "\(tag) image \(b) post_layernorm naive=\(naive)")
                worst = max(worst, r.maxRelative)
            }
        }
        print("siglip-vision-tiny \(tag): worst relative error \(worst)")
    }

    /// The fixture's two images as one call (`callAsFunction(tiles:)`: each tile through the stack, its states
    /// stacked by rows) against transformers' batch of 2: every hidden state, fast and reference paths.
    @Test(arguments: ["p14", "p16"])
    func tilesInOnePassMatchTheBatchOfSiglipVisionModel(tag: String) throws {
        let (f, tower) = try tinyTower(tag)
        let pixels = try f.tensor("\(tag).pixel_values")
        for naive in [false, true] {
            let out = tower(tiles: [pixels.row(0), pixels.row(1)], compute: naive ? .reference : .fast)
            for (i, h) in out.hiddenStates.enumerated() {
                let golden = try f.tensor("\(tag).hidden_states.\(i)")
                assertClose(
                    h, golden.reshaped([2 * golden.shape[1], golden.shape[2]]), .fp32Block,
                    "\(tag) two tiles in one pass, hidden_states[\(i)] naive=\(naive)")
            }
            let last = try f.tensor("\(tag).last_hidden_state")
            assertClose(
                out.lastHiddenState, last.reshaped([2 * last.shape[1], last.shape[2]]), .fp32Block,
                "\(tag) two tiles in one pass, post_layernorm naive=\(naive)")
        }
        // features(tiles:selectLayer:) keeps only the asked state and stops after the layers it needs.
        let layers = tower.layers.count
        for (select, golden) in [(-1, "last_hidden_state"), (-2, "hidden_states.\(layers - 1)"), (1, "hidden_states.1")]
        {
            let g = try f.tensor("\(tag).\(golden)")
            for naive in [false, true] {
                let got = try tower.features(
                    tiles: [pixels.row(0), pixels.row(1)], selectLayer: select, compute: naive ? .reference : .fast)
                assertClose(
                    got, g.reshaped([2 * g.shape[1], g.shape[2]]), .fp32Block,
                    "\(tag) features(tiles:) select_layer \(select) naive=\(naive)")
            }
        }
        #expect(throws: SelectLayerError.outOfRange(selectLayer: layers + 1, layers: layers)) {
            try tower.features(tiles: [pixels.row(0)], selectLayer: layers + 1)
        }
        // With more threads than heads: the same result.
        let threaded = tower(tiles: [pixels.row(0), pixels.row(1)], compute: .fast(threads: 4))
        let last = try f.tensor("\(tag).last_hidden_state")
        assertClose(
            threaded.lastHiddenState, last.reshaped([2 * last.shape[1], last.shape[2]]), .fp32Block,
            "\(tag) two tiles in one pass, 4 threads")
    }

    @Test func naflexTowerMatchesSiglip2VisionModel() throws {
        let f = try Fixture.load("siglip2-naflex-tiny")
        let config = try JSONDecoder().decode(
            SiglipVisionConfig.self,
            from: JSONSerialization.data(
                withJSONObject: f.manifest["config"] as? [String: Any] ?? [:])
        ).validated(file: "siglip2-naflex-tiny manifest")
        #expect(config.modelType == "siglip2_vision_model" && config.numPatches == 16)
        let tower = try Siglip2VisionTransformer.load(from: f.file, config: config)
        let (_, shapes) = try f.file.integers("spatial_shapes")
        let pixels = try f.tensor("pixel_values")
        var worst: Float = 0
        for b in 0..<2 {
            let h = Int(shapes[2 * b]), w = Int(shapes[2 * b + 1]), n = h * w
            for naive in [false, true] {
                let out = tower(
                    pixels.row(b).slice(dim: 0, 0..<n), height: h, width: w, compute: naive ? .reference : .fast)
                for (i, s) in out.hiddenStates.enumerated() {
                    let r = assertClose(
                        s, try f.tensor("hidden_states.\(i)").row(b).slice(dim: 0, 0..<n), .fp32Block,
                        "NaFlex image \(b) (\(h)×\(w)) hidden_states[\(i)] naive=\(naive)")
                    worst = max(worst, r.maxRelative)
                }
                let r = assertClose(
                    out.lastHiddenState, try f.tensor("last_hidden_state").row(b).slice(dim: 0, 0..<n),
                    .fp32Block, "NaFlex image \(b) post_layernorm naive=\(naive)")
                worst = max(worst, r.maxRelative)
            }
        }
        print("siglip2-naflex-tiny: worst relative error \(worst)")
    }

    /// The seeds and scales of Fixtures/generate/siglip_vision.py `so400m_layer` (also in the manifest).
    static func so400mLayer() -> SiglipEncoderLayer {
        let c = 1152, m = 4304
        func lin(_ out: Int, _ inp: Int, _ ws: UInt64, _ scale: Float) -> SiglipLinear {
            SiglipLinear(
                weight: .seeded([out, inp], seed: ws, scale: scale), bias: .seeded([out], seed: ws + 1, scale: 0.02))
        }
        func ln(_ seed: UInt64) -> LayerNorm {
            LayerNorm(
                weight: Tensor.seeded([c], seed: seed, scale: 0.1).map { $0 + 1 },
                bias: .seeded([c], seed: seed + 1, scale: 0.1), eps: 1e-6)
        }
        return SiglipEncoderLayer(
            layerNorm1: ln(109),
            selfAttn: SiglipAttention(
                qProj: lin(c, c, 101, 0.03), kProj: lin(c, c, 103, 0.03),
                vProj: lin(c, c, 105, 0.03), outProj: lin(c, c, 107, 0.03), numHeads: 16),
            layerNorm2: ln(111),
            mlp: SiglipMLP(fc1: lin(m, c, 113, 0.03), fc2: lin(c, m, 115, 0.015)))
    }

    @Test func so400mWidthEncoderLayerMatchesTransformers() throws {
        let f = try Fixture.load("siglip-so400m-layer")
        let layer = Self.so400mLayer()
        let x = Tensor.seeded([1024, 1152], seed: 100)
        for naive in [false, true] {
            let y = naive ? layer.naive(x) : layer(x)
            var worst: Float = 0
            for r in [0, 1, 511, 1023] {
                worst = max(
                    worst,
                    assertClose(y.row(r), try f.tensor("output.row\(r)"), .fp32Block, "row \(r) naive=\(naive)")
                        .maxRelative)
            }
            let col = Tensor(shape: [1024]) { y.storage[$0 * 1152 + 7] }
            worst = max(
                worst, assertClose(col, try f.tensor("output.col7"), .fp32Block, "column 7 naive=\(naive)").maxRelative)
            let mean = y.mean, meanAbs = y.storage.reduce(0.0) { $0 + Double(abs($1)) } / Double(y.count)
            let variance =
                y.storage.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(y.count - 1)
            let stats = Tensor(shape: [3], storage: [Float(mean), Float(meanAbs), Float(variance.squareRoot())])
            assertClose(stats, try f.tensor("output.mean_abs_std"), .fp32Block, "mean, mean |y|, std naive=\(naive)")
            print("siglip-so400m-layer naive=\(naive): worst relative error \(worst)")
        }
    }
}

@Suite struct SigLIP2NaiveVersusFast {
    @Test(arguments: [(1, 1, 4), (7, 3, 36), (33, 5, 35), (50, 2, 18)])
    func stridedSgemmAttentionMatchesNaive(t: Int, heads: Int, c: Int) {
        func lin(_ s: UInt64) -> SiglipLinear {
            SiglipLinear(weight: .seeded([c, c], seed: s, scale: 0.4), bias: .seeded([c], seed: s + 50, scale: 0.3))
        }
        let attn = SiglipAttention(qProj: lin(1), kProj: lin(2), vProj: lin(3), outProj: lin(4), numHeads: heads)
        let x = Tensor.seeded([t, c], seed: UInt64(t * 7 + c))
        assertClose(attn(x), attn.naive(x), .fp32Block, "T \(t) H \(heads) C \(c)")
        assertClose(
            attn(x, residual: x, compute: .fast(threads: 3)), attn.naive(x) + x, .fp32Block, "with residual, 3 threads")
    }

    @Test(arguments: [(5, 7, 11), (16, 36, 47), (3, 17, 33)])
    func fusedMLPMatchesNaive(t: Int, c: Int, m: Int) {
        let mlp = SiglipMLP(
            fc1: SiglipLinear(weight: .seeded([m, c], seed: 1, scale: 0.5), bias: .seeded([m], seed: 2)),
            fc2: SiglipLinear(weight: .seeded([c, m], seed: 3, scale: 0.3), bias: .seeded([c], seed: 4)))
        let x = Tensor.seeded([t, c], seed: 5, scale: 3)
        assertClose(mlp(x), mlp.naive(x), .fp32Block)
        assertClose(mlp(x, residual: x, compute: .fast(threads: 2)), mlp.naive(x) + x, .fp32Block)
    }

    @Test(arguments: [1, 2, 3])
    func rowSplitLayerNormMatchesTensorLayerNorm(threads: Int) {
        let ln = LayerNorm(weight: .seeded([37], seed: 1), bias: .seeded([37], seed: 2), eps: 1e-6)
        let x = Tensor.seeded([11, 37], seed: 3, scale: 5)
        assertClose(ln(x, compute: .fast(threads: threads)), ln.naive(x), .exact)
    }

    @Test func vectorisedSoftmaxAndGeluMatchLibm() {
        let x = Tensor.seeded([9, 37], seed: 11, scale: 20)
        assertClose(fastSoftmaxLast(x, threads: 2), x.softmaxLast(), .fp32Op, "softmax")
        let g = Tensor.seeded([1000], seed: 12, scale: 12)
        assertClose(fastGeluTanh(g), g.map(geluTanh), .fp32Op, "gelu tanh")
    }
}

@Suite struct VisionCheckpointAndConfig {
    @Test func bothKeyPrefixesMapToTheSameTensorNames() throws {
        let released = [
            "vision_model.vision_model.embeddings.patch_embedding.weight",
            "vision_model.vision_model.head.probe", "mlp1.0.weight"
        ]
        let tf5 = [
            "vision_model.embeddings.patch_embedding.weight", "vision_model.head.probe",
            "language_model.model.embed_tokens.weight"
        ]
        let a = try VisionWeightNames.detect(in: released, source: "released")
        let b = try VisionWeightNames.detect(in: tf5, source: "tf5")
        #expect(a.prefix == "vision_model.vision_model.")
        #expect(b.prefix == "vision_model.")
        let config = try tinyConfig("p14")
        let pa = SiglipVisionParameters(config, prefix: a.prefix), pb = SiglipVisionParameters(config, prefix: b.prefix)
        #expect(pa.layers[1].qProj.weight.key == "vision_model.vision_model.encoder.layers.1.self_attn.q_proj.weight")
        #expect(pb.layers[1].fc2.bias?.key == "vision_model.encoder.layers.1.mlp.fc2.bias")
        #expect(pa.positionEmbedding.key == "vision_model.vision_model.embeddings.position_embedding.weight")
        #expect(pb.postLayernorm.weight.key == "vision_model.post_layernorm.weight")
        #expect(pa.specs.count == 3 + 16 * config.numHiddenLayers + 2 && pa.specs.count == Set(pa.specs).count)
        #expect(
            a.isHead("vision_model.vision_model.head.probe")
                && !a.isHead("vision_model.vision_model.encoder.layers.0.mlp.fc1.weight"))
        #expect(
            throws: CheckpointError.componentNotFound(
                source: "llm-only", component: "vision tower",
                tried: VisionWeightNames.prefixes.map { $0 + VisionWeightNames.probe })
        ) {
            try VisionWeightNames.detect(in: ["language_model.lm_head.weight"], source: "llm-only")
        }
    }

    @Test func releasedEagleLayoutLoadsTheSameTowerAsTransformers5() throws {
        let f = try Fixture.load("siglip-vision-tiny")
        let eagle = try writeCheckpoint(from: f, tag: "p14", prefix: "vision_model.vision_model.")
        let tf5 = try writeCheckpoint(from: f, tag: "p14", prefix: "vision_model.")
        defer { try? FileManager.default.removeItem(atPath: eagle); try? FileManager.default.removeItem(atPath: tf5) }
        let config = try tinyConfig("p14")
        let a = try SiglipVisionTransformer.load(from: try Checkpoint(path: eagle), config: config)
        let b = try SiglipVisionTransformer.load(from: try SafeTensorsFile(path: tf5), config: config)
        let pixels = try f.tensor("p14.pixel_values").row(0)
        // Not .exact: the fast path splits rows over BLAS.threads, a process-wide setting that tests running
        // beside this one change, and sgemm on a different row split may sum in another order.
        assertClose(a(pixels).lastHiddenState, b(pixels).lastHiddenState, .fp32Block, "same tower either way")
        assertClose(
            a(pixels, compute: .reference).lastHiddenState, b(pixels, compute: .reference).lastHiddenState, .exact,
            "same tower, naive path")
        assertClose(
            a(pixels).lastHiddenState, try f.tensor("p14.last_hidden_state").row(0), .fp32Block,
            "released layout vs transformers")
    }

    @Test func missingOrMisshapedTensorsAreTypedErrorsNamingTheTensor() throws {
        let f = try Fixture.load("siglip-vision-tiny")
        let config = try tinyConfig("p14")
        let name = "vision_model.vision_model.encoder.layers.1.mlp.fc1.bias"
        let missing = try writeCheckpoint(from: f, tag: "p14", prefix: "vision_model.vision_model.", drop: name)
        let misshaped = try writeCheckpoint(
            from: f, tag: "p14", prefix: "vision_model.vision_model.", reshape: (name, [46]))
        defer {
            try? FileManager.default.removeItem(atPath: missing); try? FileManager.default.removeItem(atPath: misshaped)
        }
        #expect(throws: CheckpointError.missing(source: missing, tensor: name)) {
            try SiglipVisionTransformer.load(from: try SafeTensorsFile(path: missing), config: config)
        }
        #expect(throws: CheckpointError.wrongShape(source: misshaped, tensor: name, expected: [47], found: [46])) {
            try SiglipVisionTransformer.load(from: try SafeTensorsFile(path: misshaped), config: config)
        }
        #expect("\(CheckpointError.wrongShape(source: "x", tensor: name, expected: [47], found: [46]))".contains(name))
    }

    @Test func visionConfigDecodesFromEagleConfigJSON() throws {
        let json = """
            {"model_type": "eagle_2_5_vl", "select_layer": -1, "downsample_ratio": 0.5,
             "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304,
               "num_hidden_layers": 27, "num_attention_heads": 16, "image_size": 448, "patch_size": 14,
               "num_channels": 3, "layer_norm_eps": 1e-06, "hidden_act": "gelu_pytorch_tanh", "vision_use_head": false},
             "text_config": {"model_type": "qwen2"}}
            """
        let c = try SiglipVisionConfig.decode(configJSON: Data(json.utf8), file: "config.json")
        #expect(c == SiglipVisionConfig.so400m)
        #expect(c.headDim == 72 && c.numPositions == 1024)
        // A real transformers 5.24 SiglipVisionConfig.to_dict(), wrapped as Eagle does.
        let tiny = try tinyConfig("p16")
        #expect(
            tiny.hiddenSize == 36 && tiny.intermediateSize == 47 && tiny.numAttentionHeads == 3
                && tiny.imageSize == 96 && tiny.patchSize == 16 && tiny.numHiddenLayers == 2
                && tiny.layerNormEps == 1e-6)
        // Missing keys take transformers' defaults.
        let sparse = try SiglipVisionConfig.decode(
            configJSON: Data(#"{"vision_config": {"hidden_size": 64, "num_attention_heads": 4}}"#.utf8), file: "c.json")
        #expect(sparse.patchSize == 16 && sparse.imageSize == 224 && sparse.numHiddenLayers == 12)
    }

    @Test func badVisionConfigsAreTypedErrors() {
        func decode(_ s: String) throws -> SiglipVisionConfig {
            try SiglipVisionConfig.decode(configJSON: Data(s.utf8), file: "c.json")
        }
        #expect(throws: VisionConfigError.unsupportedModelType(file: "c.json", found: "clip_vision_model")) {
            try decode(#"{"vision_config": {"model_type": "clip_vision_model"}}"#)
        }
        #expect(throws: VisionConfigError.missingVisionConfig(file: "c.json")) { try decode(#"{"text_config": {}}"#) }
        #expect(throws: VisionConfigError.self) { try decode("not json") }
        #expect(throws: VisionConfigError.self) { try decode(#"{"vision_config": {"hidden_size": "wide"}}"#) }
        #expect(
            throws: VisionConfigError.invalid(
                file: "c.json", field: "num_attention_heads",
                reason: "must divide hidden_size 36, got 5")
        ) {
            try decode(#"{"vision_config": {"hidden_size": 36, "num_attention_heads": 5}}"#)
        }
    }

    @Test func selectLayerRuleFollowsExtractFeature() throws {
        let states = (0..<4).map { Tensor(shape: [1], repeating: Float($0)) }
        let out = SiglipVisionTransformer.Output(
            hiddenStates: states, lastHiddenState: Tensor(shape: [1], repeating: 99))
        #expect(try SiglipVisionTransformer.features(out, selectLayer: -1).storage == [99])
        #expect(try SiglipVisionTransformer.features(out, selectLayer: 0).storage == [0])
        #expect(try SiglipVisionTransformer.features(out, selectLayer: 3).storage == [3])
        #expect(try SiglipVisionTransformer.features(out, selectLayer: -2).storage == [2])
        #expect(try SiglipVisionTransformer.features(out, selectLayer: -4).storage == [0])
        #expect(throws: SelectLayerError.outOfRange(selectLayer: 4, layers: 3)) {
            try SiglipVisionTransformer.features(out, selectLayer: 4)
        }
        #expect(throws: SelectLayerError.outOfRange(selectLayer: -5, layers: 3)) {
            try SiglipVisionTransformer.features(out, selectLayer: -5)
        }
    }
}
