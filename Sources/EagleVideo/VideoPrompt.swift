// `generate --video` / `forward --video`: a video in the prompt, fitted to the context with Automatic
// Degrade Sampling (docs/spec.md §2.1, 6). The HF processor's sampling policy (2 fps, at least 4 frames, at most
// 512 here, even count) gives the video's candidate frame count; the prompt text — the question, the
// template and the per-frame "Frame i sample at t s: " wording for every candidate frame — is counted
// as text and never cut; ADS then decides how many frames (one tile each) and how many tiles per image
// fit in the context L; the frames are sampled again at exactly that count and decoded sparsely.
// This wiring is a module of its own so that the Eagle module itself does not depend on FFmpeg; `eaglet generate
// --video` and `eaglet serve`'s video_url parts both come through it.
import ADS
import Eagle
import Imaging
import Tensor
import Tiler
import Tokenizer
import Video

/// Images and one video as prompt ids and pixel_values, sized by ADS.
public struct VideoPrompt: Sendable {
    public var ids: [Int]
    /// (N, 3, S, S): the images' tiles, then one tile per chosen frame.
    public var pixels: Tensor
    /// The chosen frames' indices in the video.
    public var frames: [Int]
    /// The most tiles ADS left each image.
    public var tileCap: Int
    public var tilesPerImage: [Int]

    /// The prompt for `question` about `images` (first, in order) and the video at `path` (after them), with the
    /// frame count and tile cap ADS picks for the context `maxContext` (default: the model's positions).
    public static func prepare(
        pipeline: EaglePipeline, images: [RGBImage], video path: String, question: String,
        system: String?, maxContext: Int?, maxPixels: Int = RGBImage.defaultMaxPixels
    ) throws -> VideoPrompt {
        guard let tokenizer = pipeline.tokenizer else { throw EagleError.noTokenizer(directory: pipeline.directory) }
        let c = pipeline.model.config
        let context = maxContext ?? c.text.maxPositionEmbeddings
        let file = try VideoFile(path: path, maxPixels: maxPixels)
        let info = file.info
        let candidates = try sampleFrames(
            totalFrames: info.frameCount, videoFPS: info.averageFrameRate,
            policy: FrameSamplingPolicy(maxFrames: 512))
        // Text tokens: the whole prompt with no <IMG_CONTEXT> at all, wording for every candidate frame.
        let textOnly = EaglePrompt.build(
            question: question,
            media: images.map { _ in .image(contextTokens: 0) } + [
                .video(
                    frames: candidates.indices.count, tokensPerFrame: 0, timestamps: candidates.timestamps,
                    fps: candidates.sampleFPS)
            ],
            system: system)
        let textTokens = tokenizer.encode(textOnly).count
        var caps = [12, 8, 6, 4, 2, 1].filter { $0 <= c.maxTiles }
        if caps.isEmpty { caps = [1] }
        let ads = ADSConfig(
            tokensPerTile: c.tokensPerTile, tileCaps: caps, minFrames: 8, tileSize: c.tileSize,
            useThumbnail: c.useThumbnail)
        let allocation = try automaticDegradeSampling(
            ADSRequest(
                maxContext: context, textTokens: textTokens,
                images: images.map { ADSImage(width: $0.width, height: $0.height) },
                temporalCandidates: [candidates.indices.count]), config: ads)
        let n = allocation.frames.first ?? 0
        let chosen = try sampleFrames(totalFrames: info.frameCount, videoFPS: info.averageFrameRate, exactCount: n)

        let imageTiler = try Tiler(
            TilingConfig(
                tileSize: c.tileSize, minTiles: min(c.minTiles, allocation.tileCap),
                maxTiles: allocation.tileCap, useThumbnail: c.useThumbnail))
        let frameTiler = try Tiler(TilingConfig(tileSize: c.tileSize, minTiles: 1, maxTiles: 1, useThumbnail: false))
        var parts = [Tensor](), tiles = [Int]()
        for image in images {
            let p = imageTiler.pixelValues(image)
            parts.append(p); tiles.append(p.shape[0])
        }
        var frameTiles = [Int: Tensor]()
        try file.forEachFrame(at: chosen.indices) { frame in
            frameTiles[frame.index] = frameTiler.pixelValues(frame.image)
        }
        for i in chosen.indices { if let t = frameTiles[i] { parts.append(t) } }
        let media: [PromptMedia] =
            tiles.map { .image(contextTokens: $0 * c.tokensPerTile) } + [
                .video(
                    frames: chosen.indices.count, tokensPerFrame: c.tokensPerTile, timestamps: chosen.timestamps,
                    fps: chosen.sampleFPS)
            ]
        let ids = tokenizer.encode(EaglePrompt.build(question: question, media: media, system: system))
        return VideoPrompt(
            ids: ids, pixels: Tensor.concatenate(parts, dim: 0), frames: chosen.indices,
            tileCap: allocation.tileCap, tilesPerImage: tiles)
    }
}
