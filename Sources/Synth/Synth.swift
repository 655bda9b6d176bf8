// A seeded random checkpoint in the released Hugging Face layout (docs/spec.md §7.1, §7.2), streamed to disk:
// what `eaglet synth` writes so anyone can try real sizes without a download.
//
// What it is: three presets that produce an `EagleConfig` (the Eagle2.5-8B shape, a small real-width
// Eagle2-1B-like shape, and a few-MB `tiny` shape CI can run end to end); a plan that takes the tensor list from
// `EagleParameters(config, visionPrefix: "vision_model.vision_model.").specs` (the loader's own declaration,
// never spelled again here), computes every tensor's size up front and packs them into shards of at most
// `shardBytes` bytes (header included); and a writer that puts each shard's header first and then generates each
// tensor in blocks of 2²⁰ values, so memory stays at a few MB whatever the size.
// Values: per tensor, a SplitMix64 stream seeded from (seed, tensor index). Norm weights are 1; biases are
// uniform in ±0.02; every other tensor (linear and conv weights, embeddings, position tables, the LM head) is
// uniform with standard deviation 0.02, the config's `initializer_range`, which keeps activations finite through
// every layer (the residual streams are normalised before each block).
// What it is not: a trained model; its logits mean nothing.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
#if canImport(Glibc)
import Glibc
#endif
import Eagle
import Qwen2
import SafeTensors
import SigLIP2
import Tokenizer

/// Why a synthetic checkpoint cannot be planned or written.
public enum EagleSynthError: Error, Equatable, CustomStringConvertible, Sendable {
    case unknownPreset(String)
    case badLayers(flag: String, value: Int)
    case unsupportedDType(String)
    /// A shard limit smaller than the file one tensor needs on its own.
    case shardTooSmall(limit: Int, tensor: String, needs: Int)
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownPreset(p):
            return
                "--preset: unknown preset '\(p)' (expected one of \(EagleSynth.Preset.allCases.map(\.rawValue).joined(separator: ", ")))"
        case let .badLayers(flag, v): return "\(flag): a layer count must be at least 1, got \(v)"
        case let .unsupportedDType(d): return "--dtype: '\(d)' is not supported (expected bf16 or f32)"
        case let .shardTooSmall(limit, tensor, needs):
            return
                "--shard-bytes: \(limit) bytes cannot hold '\(tensor)', which needs a shard of \(needs) bytes on its own"
        case let .cannotWrite(path, reason): return "\(path): \(reason)"
        }
    }
}

/// A seeded random Eagle 2.5 checkpoint.
public struct EagleSynth: Sendable {
    /// The shapes `eaglet synth --preset` knows.
    public enum Preset: String, CaseIterable, Sendable {
        /// nvidia/Eagle2.5-8B: SigLIP So400m (patch 14 at 448) and Qwen2.5-7B, untied (docs/spec.md §3.2, §5.1).
        case eagle25_8b = "eagle2.5-8b"
        /// The Eagle2-1B shape: SigLIP So400m and Qwen2.5-0.5B, tied embeddings.
        case eagle2_1b = "eagle2-1b"
        /// A few-MB shape with odd widths and its own byte-level tokenizer, for CI.
        case tiny

        /// The preset's configuration.
        public var config: EagleConfig {
            /// The released layout around a Qwen2.5 decoder of the given shape: So400m at 448 px / patch 14,
            /// up to 12 tiles + thumbnail, Qwen's vocabulary with Eagle's tokens.
            func released(hidden: Int, layers: Int, heads: Int, kvHeads: Int, mlp: Int, tied: Bool) -> EagleConfig {
                EagleConfig(
                    vision: SiglipVisionConfig(
                        hiddenSize: 1152, intermediateSize: 4304, numHiddenLayers: 27, numAttentionHeads: 16,
                        imageSize: 448, patchSize: 14),
                    text: Qwen2Config(
                        hiddenSize: hidden, numHiddenLayers: layers, numAttentionHeads: heads,
                        numKeyValueHeads: kvHeads,
                        intermediateSize: mlp, rmsNormEps: 1e-6, vocabSize: 151_674, tieWordEmbeddings: tied,
                        maxPositionEmbeddings: 32768, ropeTheta: 1_000_000),
                    selectLayer: -1, downsampleRatio: 0.5, tileSize: 448, minTiles: 1, maxTiles: 12,
                    useThumbnail: true, imageTokenIndex: 151_667)
            }
            switch self {
            case .eagle25_8b:
                // vocab_size: the Qwen vocabulary (151,643) + Qwen2.5's 22 control tokens + Eagle's 9 added tokens
                // (see `EagleSynth.eagleAddedTokens`). The base Qwen2.5-7B table has 152,064 rows; the released
                // Eagle2.5-8B value is not confirmed (docs/spec.md §5.1, NOT FOUND).
                return released(hidden: 3584, layers: 28, heads: 28, kvHeads: 4, mlp: 18944, tied: false)
            case .eagle2_1b:
                return released(hidden: 896, layers: 24, heads: 14, kvHeads: 2, mlp: 4864, tied: true)
            case .tiny:
                return EagleConfig(
                    vision: SiglipVisionConfig(
                        hiddenSize: 32, intermediateSize: 52, numHiddenLayers: 2, numAttentionHeads: 4, imageSize: 64,
                        patchSize: 8),
                    text: Qwen2Config(
                        hiddenSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                        intermediateSize: 96, rmsNormEps: 1e-6, vocabSize: EagleSynth.tinyVocabularySize,
                        tieWordEmbeddings: false, maxPositionEmbeddings: 4096, ropeTheta: 10_000),
                    selectLayer: -1, downsampleRatio: 0.5, tileSize: 64, minTiles: 1, maxTiles: 4,
                    useThumbnail: true, imageTokenIndex: 5)
            }
        }

        /// `<|endoftext|>` and `<|im_end|>` in the preset's tokenizer.
        var endOfText: Int { self == .tiny ? 0 : 151_643 }
        var imEnd: Int { self == .tiny ? 2 : 151_645 }
    }

    /// The key prefix of the vision tower in the released checkpoint.
    public static let visionPrefix = "vision_model.vision_model."
    /// Default shard limit, 5 GB (as `save_pretrained`'s `max_shard_size="5GB"`).
    public static let defaultShardBytes = 5_000_000_000

    public let preset: Preset
    public let config: EagleConfig
    public let dtype: DType
    public let seed: UInt64
    public let shardBytes: Int

    /// `visionLayers` / `textLayers` override the preset's layer counts (at least 1); `dtype` is .bf16 or .f32.
    public init(
        preset: Preset, visionLayers: Int? = nil, textLayers: Int? = nil, dtype: DType = .bf16, seed: UInt64 = 0,
        shardBytes: Int = EagleSynth.defaultShardBytes
    ) throws {
        var c = preset.config
        if let v = visionLayers {
            guard v >= 1 else { throw EagleSynthError.badLayers(flag: "--vision-layers", value: v) }
            c.vision.numHiddenLayers = v
        }
        if let t = textLayers {
            guard t >= 1 else { throw EagleSynthError.badLayers(flag: "--text-layers", value: t) }
            c.text.numHiddenLayers = t
        }
        guard dtype == .bf16 || dtype == .f32 else { throw EagleSynthError.unsupportedDType(dtype.rawValue) }
        self.preset = preset; config = c; self.dtype = dtype; self.seed = seed; self.shardBytes = shardBytes
    }

    /// Every tensor, in declaration order: the loader's own list under the released prefixes.
    public var specs: [ParameterSpec] { EagleParameters(config, visionPrefix: EagleSynth.visionPrefix).specs }

    /// Number of parameters (elements of every tensor).
    public var parameterCount: Int { specs.reduce(0) { $0 + $1.shape.reduce(1, *) } }

    /// The shards: each a list of (index into `specs`, entry), in order.
    public struct Shard: Sendable {
        public let fileName: String
        public let tensors: [(index: Int, entry: SafeTensorsEntry)]
        /// Bytes of the tensors' data.
        public var dataBytes: Int { tensors.reduce(0) { $0 + $1.entry.byteCount } }
    }

    /// The metadata every shard carries (as `save_pretrained` writes it).
    static let shardMetadata = ["format": "pt"]

    /// Largest header a shard of `entries` can have: offsets counted at 20 digits each, plus padding.
    static func headerBound(_ entries: [SafeTensorsEntry]) -> Int {
        var n = safeTensorsHeader([], metadata: shardMetadata).count + 7
        for e in entries {
            let shape = e.shape.map(String.init).joined(separator: ",")
            n +=
                jsonString(e.name).utf8.count + "{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],".utf8.count
                + "\"data_offsets\":[,]},:".utf8.count + 40
        }
        return n
    }

    /// Packs the tensors, in order, into shards whose files are at most `shardBytes` bytes each.
    public func shards() throws -> [Shard] {
        var groups = [[(index: Int, entry: SafeTensorsEntry)]]()
        var cur = [(index: Int, entry: SafeTensorsEntry)]()
        var curData = 0, curHeader = EagleSynth.headerBound([])
        for (i, s) in specs.enumerated() {
            let e = SafeTensorsEntry(s.key, dtype, s.shape)
            let alone = EagleSynth.headerBound([e]) + e.byteCount
            guard alone <= shardBytes else {
                throw EagleSynthError.shardTooSmall(limit: shardBytes, tensor: s.key, needs: alone)
            }
            let grown = curHeader + EagleSynth.headerBound([e]) - EagleSynth.headerBound([])
            if !cur.isEmpty && grown + curData + e.byteCount > shardBytes {
                groups.append(cur); cur = []; curData = 0; curHeader = EagleSynth.headerBound([])
            }
            cur.append((i, e)); curData += e.byteCount
            curHeader += EagleSynth.headerBound([e]) - EagleSynth.headerBound([])
        }
        if !cur.isEmpty { groups.append(cur) }
        let n = groups.count
        func five(_ k: Int) -> String {
            let s = String(k); return String(repeating: "0", count: max(0, 5 - s.count)) + s
        }
        return groups.enumerated().map { k, g in
            Shard(fileName: "model-\(five(k + 1))-of-\(five(n)).safetensors", tensors: g)
        }
    }

    /// How tensor `spec` is filled: a constant, or uniform values scaled by `scale`.
    enum Fill: Equatable {
        case constant(Float)
        case uniform(scale: Float)
    }

    static func fill(_ spec: ParameterSpec) -> Fill {
        if spec.shape.count == 1 {
            return spec.key.hasSuffix(".weight") ? .constant(1) : .uniform(scale: 0.02)
        }
        // Uniform in ±a has standard deviation a/√3: a = 0.02·√3 gives 0.02.
        return .uniform(scale: 0.02 * Float(3).squareRoot())
    }

    /// The first state of tensor `index`'s stream.
    static func streamSeed(seed: UInt64, index: Int) -> UInt64 {
        var g = SplitMix64(seed: seed ^ (UInt64(index) &* 0xD1B5_4A32_D192_ED03))
        return g.next()
    }

    /// The values of tensor `index` (for tests and small tensors; the writer streams the same values in blocks).
    public func values(ofTensor index: Int) -> [Float] {
        var out = [Float]()
        generate(index: index) { out.append(contentsOf: $0) }
        return out
    }

    /// Generates tensor `index` in blocks of at most 2²⁰ values, handing each to `sink`.
    func generate(index: Int, _ sink: (UnsafeBufferPointer<Float>) throws -> Void) rethrows {
        let spec = specs[index]
        let count = spec.shape.reduce(1, *)
        let block = 1 << 20
        var buffer = [Float](repeating: 0, count: min(count, block))
        var rng = SplitMix64(seed: EagleSynth.streamSeed(seed: seed, index: index))
        let fill = EagleSynth.fill(spec)
        var done = 0
        while done < count {
            let n = min(block, count - done)
            switch fill {
            case let .constant(v): for i in 0..<n { buffer[i] = v }
            case let .uniform(scale): for i in 0..<n { buffer[i] = rng.nextSigned() * scale }
            }
            try buffer.withUnsafeBufferPointer { try sink(UnsafeBufferPointer(rebasing: $0[0..<n])) }
            done += n
        }
    }

    /// What `write` produced.
    public struct Report: Sendable {
        public var directory: String
        /// Every file written, with its size in bytes, in the order written.
        public var files: [(name: String, bytes: Int)]
        public var parameterCount: Int
        /// Bytes of tensor data (the index's `metadata.total_size`).
        public var tensorBytes: Int
        public var shardCount: Int
        /// Why tokenizer.json was not written, or nil when it was.
        public var tokenizerSkipped: String?
    }

    /// Writes the checkpoint into `directory` (created if needed): config.json, generation_config.json,
    /// preprocessor_config.json, the shards, model.safetensors.index.json and, when it can, tokenizer.json.
    /// `qwenTokenizer`: Qwen's tokenizer.json, needed for the tokenizer of the real-width presets.
    public func write(to directory: String, qwenTokenizer: String? = nil) throws -> Report {
        let plan = try shards()
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw EagleSynthError.cannotWrite(path: directory, reason: "cannot create the folder (\(error))")
        }
        var report = Report(
            directory: directory, files: [], parameterCount: parameterCount,
            tensorBytes: plan.reduce(0) { $0 + $1.dataBytes }, shardCount: plan.count, tokenizerSkipped: nil)
        func put(_ name: String, _ data: Data) throws {
            let path = Path.join(directory, name)
            do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
                throw EagleSynthError.cannotWrite(path: path, reason: "cannot write (\(error))")
            }
            report.files.append((name, data.count))
        }
        func json(_ v: Any) throws -> Data { try JSON.serialize(v) + Data("\n".utf8) }

        try put("config.json", try json(configJSON()))
        try put("generation_config.json", try json(generationConfigJSON()))
        try put("preprocessor_config.json", try json(preprocessorConfigJSON()))

        var weightMap = [String: Any]()
        for shard in plan {
            let path = Path.join(directory, shard.fileName)
            let w = try SafeTensorsStreamWriter(
                path: path, entries: shard.tensors.map(\.entry), metadata: EagleSynth.shardMetadata)
            for (index, entry) in shard.tensors {
                try generate(index: index) { try w.append(floats: $0) }
                weightMap[entry.name] = shard.fileName
            }
            try w.finish()
            report.files.append((shard.fileName, w.fileSize))
        }
        try put(
            "model.safetensors.index.json",
            try json(["metadata": ["total_size": report.tensorBytes], "weight_map": weightMap] as [String: Any]))

        if preset == .tiny {
            try put("tokenizer.json", try json(EagleSynth.tinyTokenizerJSON()))
        } else if let q = qwenTokenizer, FileManager.default.fileExists(atPath: q) {
            try put("tokenizer.json", try json(try EagleSynth.eagleTokenizerJSON(qwen: q)))
        } else {
            report.tokenizerSkipped =
                "Qwen's tokenizer.json was not found (run `make qwen-vocab`, or pass its path); "
                + "generate with --input-ids instead of --prompt"
        }
        return report
    }

    // MARK: JSON files

    /// A Float as the Double with the same shortest decimal spelling (1e-06, not 9.99999997e-07).
    func decimal(_ x: Float) -> Double { Double("\(x)") ?? Double(x) }

    var torchDType: String { dtype == .bf16 ? "bfloat16" : "float32" }

    /// config.json as the released nvidia/Eagle2.5-8B spells it (transformers 4.x keys, docs/spec.md §7.1).
    public func configJSON() -> [String: Any] {
        let v = config.vision, t = config.text
        let vision: [String: Any] = [
            "model_type": "siglip_vision_model", "hidden_size": v.hiddenSize, "intermediate_size": v.intermediateSize,
            "num_hidden_layers": v.numHiddenLayers, "num_attention_heads": v.numAttentionHeads,
            "num_channels": v.numChannels, "image_size": v.imageSize, "patch_size": v.patchSize,
            "hidden_act": v.hiddenAct, "layer_norm_eps": decimal(v.layerNormEps), "attention_dropout": 0.0,
            // The pooling head is not written (Eagle never uses it).
            "vision_use_head": false, "torch_dtype": torchDType
        ]
        let text: [String: Any] = [
            "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": t.vocabSize,
            "hidden_size": t.hiddenSize, "intermediate_size": t.intermediateSize,
            "num_hidden_layers": t.numHiddenLayers, "num_attention_heads": t.numAttentionHeads,
            "num_key_value_heads": t.numKeyValueHeads, "hidden_act": "silu",
            "max_position_embeddings": t.maxPositionEmbeddings, "initializer_range": 0.02,
            "rms_norm_eps": decimal(t.rmsNormEps), "use_cache": true, "tie_word_embeddings": t.tieWordEmbeddings,
            "rope_theta": t.ropeTheta, "rope_scaling": JSONNull(), "use_sliding_window": false,
            "sliding_window": 131_072, "max_window_layers": t.numHiddenLayers, "attention_dropout": 0.0,
            "bos_token_id": preset.endOfText, "eos_token_id": preset.imEnd, "torch_dtype": torchDType
        ]
        return [
            "architectures": ["Eagle2_5_VLForConditionalGeneration"],
            "auto_map": [
                "AutoConfig": "configuration_eagle2_5_vl.Eagle2_5_VLConfig",
                "AutoModel": "modeling_eagle2_5_vl.Eagle2_5_VLForConditionalGeneration"
            ],
            "model_type": "eagle_2_5_vl", "vision_config": vision, "text_config": text,
            "select_layer": config.selectLayer, "force_image_size": config.tileSize,
            "downsample_ratio": config.downsampleRatio, "template": "qwen2-chat", "dynamic_image_size": true,
            "use_thumbnail": config.useThumbnail, "min_dynamic_tiles": config.minTiles,
            "max_dynamic_tiles": config.maxTiles, "pad2square": false, "use_backbone_lora": 0, "use_llm_lora": 0,
            "tie_word_embeddings": t.tieWordEmbeddings, "image_token_index": config.imageTokenIndex,
            "use_pixel_shuffle": true, "mlp_connector_layers": 2, "_attn_implementation": "flash_attention_2",
            "initializer_range": 0.02, "torch_dtype": torchDType, "transformers_version": "4.51.0"
        ]
    }

    /// generation_config.json: the stop ids `<|im_end|>` and `<|endoftext|>` (docs/spec.md §5.4, §9).
    public func generationConfigJSON() -> [String: Any] {
        [
            "bos_token_id": preset.endOfText, "eos_token_id": [preset.imEnd, preset.endOfText],
            "pad_token_id": preset.endOfText, "transformers_version": "4.51.0"
        ]
    }

    /// preprocessor_config.json in the eagle_2_5_vl pattern (docs/spec.md §7.1).
    public func preprocessorConfigJSON() -> [String: Any] {
        [
            "auto_map": [
                "AutoImageProcessor": "image_processing_eagle2_5_vl_fast.Eagle2_5_VLImageProcessorFast",
                "AutoProcessor": "processing_eagle2_5_vl.Eagle2_5_VLProcessor"
            ],
            "image_processor_type": "Eagle2_5_VLImageProcessorFast", "processor_class": "Eagle2_5_VLProcessor",
            "size": ["height": config.tileSize, "width": config.tileSize], "do_resize": false,
            "min_dynamic_tiles": config.minTiles, "max_dynamic_tiles": config.maxTiles,
            "tokens_per_tile": config.tokensPerTile, "use_thumbnail": config.useThumbnail,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_pad": false, "resample": 3
        ]
    }

    // MARK: Tokenizers

    /// Eagle's added tokens after Qwen2.5's (ids from 151,665). `<img>`, `</img>`, `<IMG_CONTEXT>` and `<quad>` are
    /// at the ids docs/spec.md §5.3 gives; the rest follow the training constants' list in order.
    public static let eagleAddedTokens = [
        "<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>"
    ]
    /// Qwen2.5's control tokens end at 151,664 (`<|file_sep|>`).
    static let firstEagleToken = 151_665

    static func addedToken(_ id: Int, _ content: String) -> [String: Any] {
        [
            "id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": false, "special": true
        ]
    }

    /// Qwen's tokenizer.json with its added tokens above 151,664 (Qwen3's `<tool_response>`, `<think>`, …)
    /// replaced by Eagle's.
    static func eagleTokenizerJSON(qwen path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path),
            var top = (try? JSON.parse(data)) as? [String: Any], let added = top["added_tokens"] as? [[String: Any]]
        else {
            throw EagleSynthError.cannotWrite(path: path, reason: "not a readable Qwen tokenizer.json")
        }
        var kept = added.filter { (JSON.int($0["id"]) ?? Int.max) < firstEagleToken }
        for (k, t) in eagleAddedTokens.enumerated() { kept.append(addedToken(firstEagleToken + k, t)) }
        top["added_tokens"] = kept
        return top
    }

    /// The tiny preset's special tokens, ids 0…11.
    static let tinySpecials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + eagleAddedTokens
    /// Merges of the tiny tokenizer (byte-level spelling, `Ġ` is a space), in rank order.
    static let tinyMerges: [(String, String)] = [
        ("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "a"), ("i", "n"), ("Ġ", "s"), ("e", "r"), ("Ġ", "w"),
        ("o", "n"), ("a", "t"), ("Ġ", "o"), ("r", "e"), ("Ġ", "c"), ("e", "n"), ("i", "s"), ("Ġ", "i"),
        ("Ġ", "b"), ("o", "u"), ("Ġ", "p"), ("in", "g"), ("Ġ", "d"), ("Ġ", "f"), ("Ġ", "m"), ("a", "n"),
        ("Ġa", "n"), ("Ġan", "d"), ("o", "r"), ("Ġ", "h"), ("e", "s"), ("Ġ", "I"), ("Ġw", "h"), ("Ġ", "is")
    ]
    /// 12 special tokens + 256 bytes + 32 merges.
    public static let tinyVocabularySize = 300

    /// A byte-level BPE tokenizer.json (Qwen2's pre-tokenizer, normalizer and decoder) over 256 bytes and a few
    /// merges, with the chat and Eagle tokens first.
    static func tinyTokenizerJSON() -> [String: Any] {
        var vocab = [String: Any]()
        for (i, t) in tinySpecials.enumerated() { vocab[t] = i }
        for b in 0..<256 { vocab[String(Character(ByteLevel.scalar[b]))] = tinySpecials.count + b }
        for (k, m) in tinyMerges.enumerated() { vocab[m.0 + m.1] = tinySpecials.count + 256 + k }
        precondition(vocab.count == tinyVocabularySize)
        let split =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
        return [
            "version": "1.0", "truncation": JSONNull(), "padding": JSONNull(),
            "added_tokens": tinySpecials.enumerated().map { addedToken($0.offset, $0.element) },
            "normalizer": ["type": "NFC"],
            "pre_tokenizer": [
                "type": "Sequence",
                "pretokenizers": [
                    [
                        "type": "Split", "pattern": ["Regex": split], "behavior": "Isolated", "invert": false
                    ] as [String: Any],
                    [
                        "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false
                    ]
                ]
            ] as [String: Any],
            "post_processor": JSONNull(),
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": [
                "type": "BPE", "dropout": JSONNull(), "unk_token": JSONNull(),
                "continuing_subword_prefix": JSONNull(), "end_of_word_suffix": JSONNull(), "fuse_unk": false,
                "byte_fallback": false, "ignore_merges": false, "vocab": vocab,
                "merges": tinyMerges.map { [$0.0, $0.1] }
            ] as [String: Any]
        ]
    }
}
