// The step's own threads — attention shared out over the packed samples and the tiles, LayerNorm and GELU split by
// rows — change nothing but the order of a few sums. The formulas themselves are checked against PyTorch autograd
// (TrainMatchesPyTorch); this is the extra check that the threaded loops compute the same step as one thread.
import Foundation
import Tensor
import Testing
import Tokenizer
import Train
import _TestSupport

@Suite struct TrainThreads {
    /// Six samples of tiny-eagle's demo image (6 tiles and a thumbnail each, 64 patches a tile): enough rows, tiles
    /// and samples that every threaded loop of the step really splits.
    @Test func twoThreadsGiveTheStepOfOne() throws {
        let tinyEagle = "\(repositoryRoot)/Fixtures/tiny-eagle"
        let dir = FileManager.default.temporaryDirectory.path + "/eaglet-train-threads-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: tinyEagle + "/demo.png", toPath: dir + "/a.png")
        let lines = (0..<6).map { k in
            "{\"image\": \"a.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\\nHow many shapes? (\(k))\"}, {\"from\": \"gpt\", \"value\": \"There are \(k) shapes.\"}]}"
        }
        try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: dir + "/data.jsonl"))
        var m = try TrainingModel(directory: tinyEagle)
        let enc = SampleEncoder(
            tokenizer: try Tokenizer(tokenizerJSON: tinyEagle + "/tokenizer.json"), tiling: m.config.tiling,
            tokensPerTile: m.config.tokensPerTile)
        let batch = pack(try readTrainingSamples(dir + "/data.jsonl").map { try enc.encode($0, file: "data.jsonl") })
        #expect((batch.pixelValues?.shape[0] ?? 0) >= 8)
        m.threads = 1
        let one = m.lossAndGradients(batch)
        m.threads = 2
        let two = m.lossAndGradients(batch)
        assertClose(
            Tensor(shape: [1], storage: [two.loss]), Tensor(shape: [1], storage: [one.loss]), .fp32Op, "loss")
        #expect(Set(one.gradients.keys) == Set(two.gradients.keys))
        for (key, g) in one.gradients.sorted(by: { $0.key < $1.key }) {
            assertClose(try #require(two.gradients[key]), g, .fp32Op, key)
        }
    }
}
