// `eaglet demo`: the tiny trained checkpoint (Fixtures/tiny-eagle, trained by
// Fixtures/generate/tiny_eagle.py on a synthetic shapes-and-colours task) answers a question about a
// shipped image. The answer streams as it is generated; a summary follows.
import ArgumentParser
import Eaglet
import Foundation
import _Essentials

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The tiny trained checkpoint answers a question about a shipped image.")

    @Option(help: "The Eaglet repository (default: found from the current folder or the executable).")
    var root: String?
    @Option(help: "Checkpoint folder (default: Fixtures/tiny-eagle of the repository).")
    var model: String?
    @Option(help: "Image (default: the checkpoint's demo.png).")
    var image: String?
    @Option(help: "Question (default: the checkpoint's demo question).")
    var prompt: String?

    func run() throws {
        try reportingInputErrors {
            let repo = try locateRepository(root)
            let dir = model ?? "\(repo)/Fixtures/tiny-eagle"
            let imagePath = image ?? "\(dir)/demo.png"
            var question = prompt ?? "What color is the circle?"
            if prompt == nil, let d = FileManager.default.contents(atPath: "\(dir)/demo.json"),
                let j = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any], let q = j["question"] as? String
            {
                question = q
            }
            let t0 = Date()
            let pipeline = try EaglePipeline(directory: dir)
            let loadTime = Date().timeIntervalSince(t0)
            let picture = try RGBImage.load(imagePath)
            let prepared = try pipeline.prepare(images: [picture], question: question)
            guard let tokenizer = pipeline.tokenizer else { throw EagleError.noTokenizer(directory: dir) }
            print(
                "Eaglet \(eagletVersion) — tiny Eagle 2.5 from \(dir) (loaded in \(String(format: "%.0f", loadTime * 1000)) ms)"
            )
            print("image:    \(imagePath) (\(picture.width)×\(picture.height))")
            print("question: \(question)")
            print("answer:   ", terminator: "")
            flushStandardOutput()
            var stream = StreamingDecoder(tokenizer: tokenizer, skipSpecialTokens: true)
            let r = try pipeline.generate(ids: prepared.ids, pixelValues: prepared.pixelValues, maxNewTokens: 32) {
                id in
                if let piece = try? stream.push(id) { print(piece, terminator: ""); flushStandardOutput() }
            }
            print(stream.finish())
            let g = prepared.grids.first.map { "\($0.columns)×\($0.rows)" } ?? "-"
            print("")
            print(
                "tiles:          \(prepared.tilesPerImage.reduce(0, +)) (grid \(g)\(prepared.tilesPerImage.first ?? 0 > 1 ? " + thumbnail" : ""), \(pipeline.model.config.tileSize) px)"
            )
            print("visual tokens:  \(r.visualTokens)")
            print("prompt tokens:  \(r.promptTokens)")
            print("new tokens:     \(r.tokens.count)")
            print(String(format: "first token:    %.1f ms", r.timeToFirstToken * 1000))
            print(String(format: "decode:         %.0f tokens/s", r.tokensPerSecond))
        }
    }
}
