// Bad config.json files: missing fields, wrong types, zero, negative and absurd sizes, each answered by
// the specific error of the decoder that meets it (EagleError, Qwen2Error, VisionConfigError).
import Foundation
import Testing
import Eagle
import Qwen2
import SafeTensors
import SigLIP2
import Tokenizer

@Suite struct ConfigRobustness {
    func eagle(_ data: Data) -> EagleError? {
        thrown { _ = try EagleConfig.decode(data, file: "config.json") } as? EagleError
    }
    func qwen(_ data: Data) -> Qwen2Error? {
        thrown { _ = try Qwen2Config.decode(data, file: "config.json") } as? Qwen2Error
    }
    func vision(_ data: Data) -> VisionConfigError? {
        thrown { _ = try SiglipVisionConfig.decode(configJSON: data, file: "config.json") } as? VisionConfigError
    }

    @Test func unchangedTinyConfigDecodes() throws {
        _ = try EagleConfig.decode(try tinyConfig { _, _, _ in }, file: "config.json")
    }

    @Test func notJSONOrNotAnObject() {
        #expect(
            eagle(Data("[1, 2]".utf8))
                == .badConfig(
                    file: "config.json", field: "(top level)",
                    expected: "a JSON object (the document is an array, not an object)"))
        #expect(
            eagle(Data())
                == .badConfig(
                    file: "config.json", field: "(top level)",
                    expected: "a JSON object (invalid JSON at byte 0: expected a value, found the end)"))
        #expect(qwen(Data("nope".utf8)) == .cannotRead("config.json", "invalid JSON at byte 1: expected null"))
        guard case .notJSON("config.json", _)? = vision(Data("nope".utf8)) else {
            Issue.record("vision: expected notJSON"); return
        }
    }

    @Test func missingFields() throws {
        #expect(
            eagle(try tinyConfig { top, _, _ in top["image_token_index"] = nil })
                == .badConfig(
                    file: "config.json", field: "image_token_index", expected: "an integer (the field is required)"))
        #expect(
            eagle(try tinyConfig { top, _, _ in top["text_config"] = nil })
                == .badConfig(file: "config.json", field: "text_config", expected: "a Qwen2 text config object"))
        #expect(qwen(try tinyConfig { _, _, text in text["hidden_size"] = nil }) == .missingField("hidden_size"))
    }

    @Test func wrongTypes() throws {
        let d = try tinyConfig { _, _, text in text["hidden_size"] = "wide" }
        #expect(qwen(d) == .badField("hidden_size", "is not a Int"))
        guard case let .badConfig("config.json", "text_config", expected)? = eagle(d) else {
            Issue.record("expected badConfig text_config"); return
        }
        #expect(expected.contains("hidden_size"))
        guard
            case .invalid("config.json", "hidden_size", _)? = vision(
                try tinyConfig { _, v, _ in v["hidden_size"] = [1] })
        else {
            Issue.record("vision hidden_size [1]: expected invalid"); return
        }
        #expect(
            eagle(try tinyConfig { top, _, _ in top["use_thumbnail"] = "yes" })
                == .badConfig(file: "config.json", field: "use_thumbnail", expected: "true or false, found yes"))
    }

    @Test func zeroAndNegativeSizes() throws {
        #expect(
            qwen(try tinyConfig { _, _, t in t["num_hidden_layers"] = -1 })
                == .badField("num_hidden_layers", "must be positive, got -1"))
        #expect(
            qwen(try tinyConfig { _, _, t in t["vocab_size"] = 0 })
                == .badField("vocab_size", "must be positive, got 0"))
        #expect(
            qwen(try tinyConfig { _, _, t in t["max_position_embeddings"] = 0 })
                == .badField("max_position_embeddings", "must be positive, got 0"))
        #expect(
            qwen(try tinyConfig { _, _, t in t["rms_norm_eps"] = -1e-6 })
                == .badField("rms_norm_eps", "must be a positive number, got -1e-06"))
        #expect(
            vision(try tinyConfig { _, v, _ in v["patch_size"] = 0 })
                == .invalid(file: "config.json", field: "patch_size", reason: "must be positive, got 0"))
        #expect(
            eagle(try tinyConfig { top, _, _ in top["min_dynamic_tiles"] = 0 })
                == .badConfig(
                    file: "config.json", field: "max_dynamic_tiles",
                    expected: "1 ≤ min_dynamic_tiles ≤ max_dynamic_tiles"))
    }

    /// A valid-looking tower (2048 px tiles of 8 px patches: 65 536 patches a tile) would ask one tile's attention for
    /// a 65 536² score matrix; the config check bounds patches per side (issue 23 item 5).
    @Test func patchesPerTileAreBounded() throws {
        let e = eagle(
            try tinyConfig { top, v, _ in
                v["image_size"] = 2048; v["patch_size"] = 8; top["force_image_size"] = 2048;
                top["max_dynamic_tiles"] = 1
            })
        guard case .badConfig(_, "vision_config.image_size", _)? = e else {
            Issue.record("expected badConfig(vision_config.image_size), got \(String(describing: e))"); return
        }
    }

    @Test func absurdSizesHitTheLimits() throws {
        #expect(
            qwen(try tinyConfig { _, _, t in t["num_hidden_layers"] = 1_000_000_000 })
                == .badField(
                    "num_hidden_layers",
                    "is 1000000000, above the limit of \(Qwen2Config.maxLayers) (a corrupt config?)"))
        #expect(
            qwen(try tinyConfig { _, _, t in t["vocab_size"] = 1 << 40 })
                == .badField(
                    "vocab_size", "is \(1 << 40), above the limit of \(Qwen2Config.maxVocabulary) (a corrupt config?)"))
        #expect(
            qwen(try tinyConfig { _, _, t in t["max_position_embeddings"] = Int.max })
                == .badField(
                    "max_position_embeddings",
                    "is \(Int.max), above the limit of \(Qwen2Config.maxContext) (a corrupt config?)"))
        #expect(
            vision(try tinyConfig { _, v, _ in v["image_size"] = 100_000 })
                == .invalid(
                    file: "config.json", field: "image_size",
                    reason: "is 100000, above the limit of \(SiglipVisionConfig.maxImageSize) pixels"))
        #expect(
            vision(try tinyConfig { _, v, _ in v["num_hidden_layers"] = 1 << 30 })
                == .invalid(
                    file: "config.json", field: "num_hidden_layers",
                    reason: "is \(1 << 30), above the limit of \(SiglipVisionConfig.maxLayers)"))
        // NaFlex views num_patches rows as an S×S table; 250 once reached a precondition in the embeddings.
        #expect(
            vision(try tinyConfig { _, v, _ in v["num_patches"] = 250 })
                == .invalid(
                    file: "config.json", field: "num_patches",
                    reason: "must be a perfect square (the position table is S×S), got 250"))
        guard
            case .badConfig("config.json", "max_dynamic_tiles", _)? = eagle(
                try tinyConfig { top, _, _ in top["max_dynamic_tiles"] = 900_000_000 })
        else {
            Issue.record("900 M tiles: expected badConfig max_dynamic_tiles"); return
        }
        #expect(
            eagle(try tinyConfig { top, _, _ in top["image_token_index"] = 1 << 31 })
                == .badConfig(file: "config.json", field: "image_token_index", expected: "an integer, found \(1 << 31)")
        )
        #expect(
            eagle(try tinyConfig { top, _, _ in top["image_token_index"] = 420 })
                == .badConfig(
                    file: "config.json", field: "image_token_index", expected: "an id inside the vocabulary 0..<420"))
    }

    @Test func oversizedConfigFileIsRefusedBeforeReading() throws {
        let dir = "\(scratchDirectory)/config-huge"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let size = EagleConfig.maxFileBytes + 1
        _ = try sparse("config-huge/config.json", size: UInt64(size))
        #expect(
            throws: EagleError.badConfig(
                file: "\(dir)/config.json", field: "(file)",
                expected: "a config.json of at most \(EagleConfig.maxFileBytes) bytes, found \(size)")
        ) {
            try EagleConfig.load(directory: dir)
        }
    }
}

/// JSON that does not parse is reported with the byte where the parser stopped, as docs/robustness.md says; a
/// document of the wrong kind says which kind it is (issue 23, minor item: the offset was dropped).
@Suite struct JSONErrorsNameTheByte {
    @Test func everyLoaderKeepsTheOffset() throws {
        let broken = Data(#"{"a": [1, 2,, 3]}"#.utf8)
        let e = "\(String(describing: thrown { _ = try EagleConfig.decode(broken, file: "config.json") }))"
        #expect(e.contains("invalid JSON at byte 12"), "config.json: \(e)")
        let q = "\(String(describing: thrown { _ = try Qwen2Config.decode(broken, file: "config.json") }))"
        #expect(q.contains("invalid JSON at byte 12"), "text config: \(q)")
        let t =
            "\(String(describing: thrown { _ = try Tokenizer(tokenizerJSONData: Data(#"{"model": {"type": "BPE", "#.utf8)) }))"
        #expect(t.contains("invalid JSON at byte 26"), "tokenizer.json: \(t)")
        let array =
            "\(String(describing: thrown { _ = try EagleConfig.decode(Data("[1]".utf8), file: "config.json") }))"
        #expect(array.contains("the document is an array"), "config.json as an array: \(array)")
        let dir = "\(scratchDirectory)/broken-index"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        scratch("broken-index/model.safetensors.index.json", Array(#"{"weight_map": {"a": 1,}}"#.utf8))
        let i = "\(String(describing: thrown { _ = try Checkpoint(path: dir) }))"
        #expect(i.contains("invalid JSON at byte 23"), "index: \(i)")
    }
}
