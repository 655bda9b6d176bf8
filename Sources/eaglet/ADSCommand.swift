// `eaglet ads`: the Automatic Degrade Sampling allocation for one sample (docs/spec.md §2.1): how many frames
// each temporal input and how many tiles each image get within a context of L tokens, text kept whole.
import ArgumentParser
import Eaglet
import Foundation

struct ADSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ads",
        abstract: "Fit a sample's images and videos into a context length with Automatic Degrade Sampling.",
        discussion: """
            Text is never cut. Phase 1 gives every image one tile and shares the rest among the temporal \
            inputs (each at least min(--min-frames, its candidates), the rest in proportion); phase 2 picks the \
            largest tile cap in {12, 8, 6, 4, 2, 1} that fits. --json prints one line {"frames":[...], \
            "tile_cap":T,"tiles":[...],"visual_tokens":V,"total_tokens":N}.
            """)

    @Option(help: "Context length L in tokens.")
    var maxContext: Int
    @Option(help: "Text tokens of the sample (kept whole).")
    var textTokens: Int
    @Option(help: "A still image's size, WxH (repeatable).")
    var image: [String] = []
    @Option(
        help: "A temporal input's candidate frame count (repeatable): a video's policy count, or a document's pages.")
    var temporal: [Int] = []
    @Option(help: "N_min: the least frames each temporal input gets (or all its candidates if fewer).")
    var minFrames: Int = 8
    @Option(help: "Tokens per tile or frame.")
    var tokensPerTile: Int = 256
    @Flag(help: "Print exactly one line of JSON.")
    var json = false

    func parsedImages() throws -> [ADSImage] {
        try image.map { s in
            let parts = s.lowercased().split(separator: "x")
            guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), w > 0, h > 0 else {
                throw ValidationError("--image must look like 1920x1080 (got \(s))")
            }
            guard w <= maxImageSide, h <= maxImageSide else {
                throw ValidationError("--image sides must be at most \(maxImageSide) pixels (got \(s))")
            }
            return ADSImage(width: w, height: h)
        }
    }

    func validate() throws {
        _ = try parsedImages()
        guard maxContext >= 1 else { throw ValidationError("--max-context must be at least 1 (got \(maxContext))") }
        guard textTokens >= 0 else { throw ValidationError("--text-tokens must be ≥ 0 (got \(textTokens))") }
        guard temporal.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--temporal counts must be at least 1 (got \(temporal))")
        }
        guard minFrames >= 1 else { throw ValidationError("--min-frames must be at least 1 (got \(minFrames))") }
        guard tokensPerTile >= 1 else {
            throw ValidationError("--tokens-per-tile must be at least 1 (got \(tokensPerTile))")
        }
    }

    func run() throws {
        try reportingInputErrors {
            let images = try parsedImages()
            let config = ADSConfig(tokensPerTile: tokensPerTile, minFrames: minFrames)
            let a = try automaticDegradeSampling(
                ADSRequest(
                    maxContext: maxContext, textTokens: textTokens, images: images,
                    temporalCandidates: temporal), config: config)
            if json {
                func list(_ xs: [Int]) -> String { "[" + xs.map(String.init).joined(separator: ",") + "]" }
                print(
                    "{\"frames\":\(list(a.frames)),\"tile_cap\":\(a.tileCap),\"tiles\":\(list(a.tiles)),"
                        + "\"visual_tokens\":\(a.visualTokens),\"total_tokens\":\(a.totalTokens)}")
                return
            }
            print("context \(maxContext) = text \(textTokens) + visual budget \(maxContext - textTokens)")
            for (i, (c, f)) in zip(temporal, a.frames).enumerated() {
                print("temporal input \(i + 1): \(f) of \(c) candidate frames (\(f * tokensPerTile) tokens)")
            }
            print("tile cap t* = \(a.tileCap)")
            for (i, (im, t)) in zip(images, a.tiles).enumerated() {
                print(
                    "image \(i + 1) \(im.width)×\(im.height): \(t) tile\(t == 1 ? "" : "s") (\(t * tokensPerTile) tokens)"
                )
            }
            print(
                "visual tokens \(a.visualTokens), total \(a.totalTokens) of \(maxContext) (\(maxContext - a.totalTokens) unused)"
            )
        }
    }
}
