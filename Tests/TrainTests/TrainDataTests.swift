// The training data path and the loop around the step: JSONL errors name their line, prompts are the bytes
// inference builds, the loss covers exactly the gpt turns and their <|im_end|>, packing restarts positions, ADS
// degrades tiles before refusing, and an interrupted, resumed run ends with the very same parameters.
import Eagle
import Foundation
import Imaging
import SafeTensors
import Tensor
import Testing
import Train
import _TestSupport

let tinyRandom = "\(repositoryRoot)/Fixtures/tiny-random"

/// A temporary folder with `lines` as data.jsonl and tiny-random's example image beside it.
func dataFolder(_ lines: [String]) throws -> String {
    let dir = FileManager.default.temporaryDirectory.path + "/eaglet-train-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: tinyRandom + "/example.png", toPath: dir + "/a.png")
    try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: dir + "/data.jsonl"))
    return dir
}

func sampleLine(_ q: String, _ a: String, image: Bool = true) -> String {
    let conv =
        "[{\"from\": \"human\", \"value\": \"\(image ? "<image>\\n" : "")\(q)\"}, {\"from\": \"gpt\", \"value\": \"\(a)\"}]"
    return image ? "{\"image\": \"a.png\", \"conversations\": \(conv)}" : "{\"conversations\": \(conv)}"
}

@Suite struct TrainingData {
    @Test func malformedLinesAreNamedByNumber() throws {
        let dir = try dataFolder([sampleLine("q", "a"), "", "{\"conversations\": 3}"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(
            throws: TrainingDataError.malformed(file: dir + "/data.jsonl", line: 3, reason: "no \"conversations\" list")
        ) {
            try readTrainingSamples(dir + "/data.jsonl")
        }
    }

    /// The prompt part of a sample is token for token what `EaglePipeline.prepare` builds for the same image and
    /// question; the labels cover the answer and its <|im_end|>, nothing else.
    @Test func promptsAreInferencePromptsAndLabelsCoverTheAnswer() throws {
        let dir = try dataFolder([sampleLine("What is it?", "A thing.")])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pipeline = try EaglePipeline(directory: tinyRandom)
        let tok = try #require(pipeline.tokenizer)
        let enc = SampleEncoder(
            tokenizer: tok, tiling: pipeline.model.config.tiling, tokensPerTile: pipeline.model.config.tokensPerTile)
        let s = try readTrainingSamples(dir + "/data.jsonl")[0]
        let e = try enc.encode(s, file: "data.jsonl")
        let prep = try pipeline.prepare(images: [try RGBImage.load(dir + "/a.png")], question: "What is it?")
        #expect(Array(e.ids.prefix(prep.ids.count)) == prep.ids)
        assertClose(try #require(e.pixelValues), try #require(prep.pixelValues), .exact, "tiles")
        let answer = tok.encode("A thing.") + [try #require(tok.id(of: "<|im_end|>"))]
        let supervisedIDs = zip(e.ids, e.supervised).filter { $0.1 }.map { $0.0 }
        #expect(supervisedIDs == answer)
        #expect(e.supervised.prefix(prep.ids.count).allSatisfy { !$0 })
        // Packed: positions restart, labels are the next supervised token of the same sample.
        let b = pack([e, e])
        #expect(b.boundaries == [0, e.ids.count, 2 * e.ids.count])
        #expect(b.positions[e.ids.count] == 0)
        #expect(b.labels.filter { $0 != PackedBatch.ignore } == answer + answer)
        #expect(b.labels[e.ids.count - 1] == PackedBatch.ignore) // nothing is predicted across the boundary
    }

    /// A pack too long for the context loses tiles (the sample with the most first) before it is refused.
    @Test func adsDegradesTilesBeforeRefusing() throws {
        let dir = try dataFolder([sampleLine("q", "a"), sampleLine("q", "a")])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pipeline = try EaglePipeline(directory: tinyRandom)
        let cfg = pipeline.model.config
        let enc = SampleEncoder(tokenizer: pipeline.tokenizer!, tiling: cfg.tiling, tokensPerTile: cfg.tokensPerTile)
        let samples = try readTrainingSamples(dir + "/data.jsonl")
        let full = try encodeFitted(samples, encoder: enc, context: 100_000, file: "d")
        let total = full.reduce(0) { $0 + $1.ids.count }
        let fitted = try encodeFitted(samples, encoder: enc, context: total - 1, file: "d")
        #expect(fitted.reduce(0) { $0 + $1.ids.count } <= total - 1)
        #expect(fitted.reduce(0) { $0 + $1.tiles } < full.reduce(0) { $0 + $1.tiles })
        #expect(throws: TrainingDataError.self) { try encodeFitted(samples, encoder: enc, context: 20, file: "d") }
    }

    /// Four steps straight, or two, a save, a restore and two more: the same parameters. In this process other
    /// suites change OpenBLAS's thread count concurrently (a process-wide setting that picks its kernels), so the
    /// last bits can differ here; TrainCLI.resumeIsBitIdentical checks bit equality in processes of their own.
    @Test func resumedRunEqualsUninterruptedRun() throws {
        let lines = (0..<8).map { sampleLine("Question \($0)?", "Answer \($0).", image: $0 % 2 == 0) }
        let dir = try dataFolder(lines)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pipeline = try EaglePipeline(directory: tinyRandom)
        let cfg = pipeline.model.config
        let enc = SampleEncoder(tokenizer: pipeline.tokenizer!, tiling: cfg.tiling, tokensPerTile: cfg.tokensPerTile)
        let samples = try readTrainingSamples(dir + "/data.jsonl")
        var o = TrainOptions()
        o.steps = 4; o.batchSamples = 2; o.lr = 1e-2; o.weightDecay = 0.1; o.schedule = .cosine; o.warmup = 1
        o.shuffle = true; o.seed = 3; o.clip = 0.5
        var straight = Trainer(
            model: try TrainingModel(directory: tinyRandom), samples: samples, encoder: enc, dataFile: "d", options: o)
        for _ in 0..<4 { _ = try straight.runStep() }
        var first = Trainer(
            model: try TrainingModel(directory: tinyRandom), samples: samples, encoder: enc, dataFile: "d", options: o)
        for _ in 0..<2 { _ = try first.runStep() }
        let saved = dir + "/run"
        try first.save(to: saved, source: tinyRandom)
        try first.save(to: saved, source: tinyRandom) // over an existing folder: replaced whole
        var second = Trainer(
            model: try TrainingModel(directory: saved), samples: samples, encoder: enc, dataFile: "d", options: o)
        try second.restore(from: saved)
        #expect(second.step == 2)
        for _ in 0..<2 { _ = try second.runStep() }
        #expect(straight.model.values.keys.sorted() == second.model.values.keys.sorted())
        for key in straight.model.values.keys {
            assertClose(second.model.values[key]!, straight.model.values[key]!, .fp32Op, "\(key) after resume")
        }
        // And the saved folder is a checkpoint `generate` loads.
        let again = try EaglePipeline(directory: saved)
        #expect(try again.generate(ids: [1, 2, 3], pixelValues: nil, maxNewTokens: 2).tokens.count <= 2)
    }
}
