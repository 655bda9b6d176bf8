// `eaglet generate`, `eaglet forward`, `eaglet inspect`: the end-to-end model from the command line
// (chapter 09, docs/cli.md). They share how a prompt is given: --prompt with zero or more --image, or --input-ids
// (a flat JSON array of ids) with optional --pixel-values (a safetensors file holding pixel_values (N, 3, S, S)).
import ArgumentParser
import Eaglet
import _Essentials
import Foundation

/// The checkpoint and how it is loaded and fed: shared by the commands that run the model (generate, forward, serve).
struct CheckpointOptions: ParsableArguments {
    @Option(help: "Checkpoint folder (config.json, model.safetensors or a sharded index, tokenizer.json).")
    var model: String
    @Flag(help: "Skip the scan that rejects NaN or infinite weights at load.")
    var skipWeightScan = false
    @Option(
        help:
            "native: BF16 decoder weights read in place from the mapped checkpoint; f32: widen every weight; bf16: also narrow fp32 ones; q8_0: quantize the decoder's matrices at load (8.5 bits a weight)."
    )
    var weights: WeightFormat = .native
    @Option(help: "Refuse images and video frames with more pixels than this (default: PIL's 89478485).")
    var maxImagePixels: Int = RGBImage.defaultMaxPixels

    /// The checkpoint, tokenizer and tiler named by --model; with `plannedContext`, a checkpoint that cannot fit
    /// with that many tokens of context is refused before any weight is read.
    func pipeline(plannedContext: Int? = nil) throws -> EaglePipeline {
        let p = try EaglePipeline(
            directory: model, scanWeights: !skipWeightScan, plannedContext: plannedContext, weights: weights)
        if let problem = p.generationConfigProblem {
            FileHandle.standardError.write(Data("eaglet: note: \(model)/\(problem)\n".utf8))
        }
        return p
    }

    func validate() throws {
        if maxImagePixels < 1 { throw ValidationError("--max-image-pixels must be at least 1") }
    }
}

/// Where the prompt comes from.
struct PromptOptions: ParsableArguments {
    @OptionGroup var checkpoint: CheckpointOptions
    @Option(name: .customLong("image"), help: "An image (PNG or JPEG); repeat for several, in prompt order.")
    var images: [String] = []
    @Option(help: "The question or instruction.")
    var prompt: String?
    @Option(help: "A system prompt replacing the default \"You are a helpful assistant.\".")
    var system: String?
    @Option(help: "A video; its frames are fitted to the context with Automatic Degrade Sampling.")
    var video: String?
    @Option(help: "A JSON file holding a flat array of token ids, used instead of --prompt.")
    var inputIds: String?
    @Option(help: "A safetensors file holding pixel_values (N, 3, S, S) F32, used as is (with --input-ids).")
    var pixelValues: String?

    var model: String { checkpoint.model }
    var maxImagePixels: Int { checkpoint.maxImagePixels }
    func pipeline(plannedContext: Int? = nil) throws -> EaglePipeline {
        try checkpoint.pipeline(plannedContext: plannedContext)
    }

    func validate() throws {
        if prompt == nil && inputIds == nil { throw ValidationError("give --prompt TEXT or --input-ids FILE.json") }
        if prompt != nil && inputIds != nil { throw ValidationError("give either --prompt or --input-ids, not both") }
        if pixelValues != nil && inputIds == nil { throw ValidationError("--pixel-values goes with --input-ids") }
        if inputIds != nil && (!images.isEmpty || video != nil) {
            throw ValidationError("--image and --video go with --prompt; use --pixel-values with --input-ids")
        }
    }

    /// The prompt ids, pixel values and tiles per image.
    func resolve(_ pipeline: EaglePipeline, maxContext: Int? = nil) throws -> (
        ids: [Int], pixels: Tensor?, tiles: [Int]
    ) {
        if let path = inputIds {
            let data: Data
            do { data = Data(try readRegularFile(path, limit: 64 << 20)) } catch {
                throw InputError(description: "\(path): \(error)")
            }
            guard let arr = (try? JSONSerialization.jsonObject(with: data)) as? [Any] else {
                let why = JSON.whyNot(data, [Any].self, what: "an array") ?? ""
                throw InputError(description: "\(path): expected a flat JSON array of integers (\(why))")
            }
            var ids = [Int]()
            for v in arr {
                guard let n = v as? NSNumber, !(v is String), n.doubleValue == n.doubleValue.rounded(),
                    abs(n.doubleValue) < 1e12
                else {
                    throw InputError(description: "\(path): expected a flat JSON array of integers, found \(v)")
                }
                ids.append(n.intValue)
            }
            var pixels: Tensor? = nil
            if let pv = pixelValues {
                let f = try SafeTensorsFile(path: pv)
                guard f.info("pixel_values") != nil else {
                    throw InputError(description: "\(pv): no tensor named 'pixel_values'")
                }
                // The shape is checked before anything indexes it (a rank-0 tensor once trapped here).
                let c = pipeline.model.config
                guard let info = f.info("pixel_values"), info.shape.count == 4, info.shape[1] == c.vision.numChannels,
                    info.shape[2] == c.tileSize, info.shape[3] == c.tileSize
                else {
                    throw EagleError.badPixelValues(
                        shape: f.info("pixel_values")?.shape ?? [],
                        expected: "(N, \(c.vision.numChannels), \(c.tileSize), \(c.tileSize)) in \(pv)")
                }
                pixels = try f.tensor("pixel_values")
            }
            return (ids, pixels, pixels.map { [$0.shape[0]] } ?? [])
        }
        let decoded = try images.map { try RGBImage.load($0, maxPixels: maxImagePixels) }
        if let video {
            let v = try VideoPrompt.prepare(
                pipeline: pipeline, images: decoded, video: video, question: prompt ?? "",
                system: system, maxContext: maxContext, maxPixels: maxImagePixels)
            FileHandle.standardError.write(
                Data(
                    "video: \(v.frames.count) frames (ADS), tile cap \(v.tileCap), \(v.ids.count) prompt tokens\n".utf8)
            )
            return (v.ids, v.pixels, v.tilesPerImage + [v.frames.count])
        }
        let p = try pipeline.prepare(images: decoded, question: prompt ?? "", system: system)
        return (p.ids, p.pixelValues, p.tilesPerImage)
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Answer a prompt (with images) with a checkpoint.")

    @OptionGroup var input: PromptOptions
    @Option(parsing: .unconditional, help: "Most new tokens.") var maxNewTokens = 64
    @Option(parsing: .unconditional, help: "0 = greedy.") var temperature: Float = 0
    @Option(parsing: .unconditional, help: "Nucleus sampling threshold (1 = off).") var topP: Float = 1
    @Option(parsing: .unconditional, help: "Keep the k most likely tokens (0 = off).") var topK = 0
    @Option(parsing: .unconditional, help: "Penalty for tokens already in the context (1 = off).")
    var repetitionPenalty: Float = 1
    @Option(help: "Sampling seed.") var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Context length L (default: the text config's max_position_embeddings).")
    var maxContext: Int?
    @Flag(
        help: """
            Print one JSON line {"tokens", "text", "prompt_tokens", "ttft_seconds", "decode_tokens_per_second", \
            "peak_rss_bytes", "load_seconds"} instead of streaming.
            """)
    var json = false

    func run() throws {
        try reportingInputErrors {
            let config = try EagleConfig.load(directory: input.model)
            try EaglePipeline.checkMaxContext(maxContext, config: config)
            let positions = config.text.maxPositionEmbeddings
            let loadStart = DispatchTime.now().uptimeNanoseconds
            let pipeline = try input.pipeline(plannedContext: maxContext ?? min(maxNewTokens, positions - 1) + 1)
            let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart) / 1e9
            let (ids, pixels, _) = try input.resolve(pipeline, maxContext: maxContext)
            var stream = pipeline.tokenizer.map { StreamingDecoder(tokenizer: $0, skipSpecialTokens: true) }
            let sampling = SamplingParameters(
                temperature: temperature, topK: topK, topP: topP, repetitionPenalty: repetitionPenalty, seed: seed)
            let r = try pipeline.generate(
                ids: ids, pixelValues: pixels, maxNewTokens: maxNewTokens, sampling: sampling, maxContext: maxContext
            ) { id in
                guard !json, var s = stream else { return }
                if let piece = try? s.push(id) { FileHandle.standardOutput.write(Data(piece.utf8)) }
                stream = s
            }
            let textOut = (try? pipeline.tokenizer?.decode(r.tokens, skipSpecialTokens: true)) ?? nil
            if json {
                let fields = [
                    "\"tokens\":[\(r.tokens.map(String.init).joined(separator: ","))]",
                    "\"text\":\(jsonString(textOut ?? ""))",
                    "\"prompt_tokens\":\(r.promptTokens)",
                    "\"ttft_seconds\":\(cFormat("%.6f", r.timeToFirstToken))",
                    "\"decode_tokens_per_second\":\(cFormat("%.3f", r.tokensPerSecond))",
                    "\"peak_rss_bytes\":\(peakResidentBytes())",
                    "\"load_seconds\":\(cFormat("%.3f", loadSeconds))"
                ]
                print("{" + fields.joined(separator: ",") + "}")
            } else {
                if var s = stream { FileHandle.standardOutput.write(Data(s.finish().utf8)) }
                if pipeline.tokenizer == nil { print(r.tokens.map(String.init).joined(separator: " "), terminator: "") }
                print("")
                flushStandardOutput() // the answer's last line before the summary, also when both share a pipe
                FileHandle.standardError.write(
                    Data((r.report.summary(promptTokens: r.promptTokens, visualTokens: r.visualTokens) + "\n").utf8))
            }
        }
    }
}

struct Forward: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One forward pass; dump input_ids, pixel_values, vision_features, visual_tokens and logits.")

    @OptionGroup var input: PromptOptions
    @Option(help: "The safetensors file to write.") var dump: String
    @Flag(help: "Run the reference (naive) paths instead of the fast ones.") var naive = false

    /// Refuses a --dump that is a folder, or a file of the checkpoint itself (writing it would replace the weights).
    func checkDumpTarget() throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dump, isDirectory: &isDir), isDir.boolValue {
            throw InputError(description: "\(dump): --dump names a folder; give a file path such as out.safetensors")
        }
        let target = URL(fileURLWithPath: dump).resolvingSymlinksInPath().path
        let folder = URL(fileURLWithPath: input.model).resolvingSymlinksInPath().path
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        where (folder as NSString).appendingPathComponent(name) == target {
            throw InputError(
                description: "\(dump): --dump would overwrite the checkpoint's own \(name); write it elsewhere")
        }
    }

    func run() throws {
        try reportingInputErrors {
            try checkDumpTarget()
            let pipeline = try input.pipeline(plannedContext: 1)
            let (ids, pixels, _) = try input.resolve(pipeline)
            let f = try pipeline.model.forward(ids: ids, pixelValues: pixels, compute: naive ? .reference : .fast)
            var w = SafeTensorsWriter()
            w.metadata = ["producer": "eaglet \(eagletVersion) forward"]
            w.add("input_ids", integers: ids.map(Int64.init), shape: [ids.count])
            if let p = pixels { w.add("pixel_values", p) }
            if let v = f.visionFeatures { w.add("vision_features", v) }
            if let v = f.visualTokens { w.add("visual_tokens", v) }
            w.add("logits", f.logits)
            try w.write(to: dump)
            print(
                "wrote \(dump): input_ids [\(ids.count)]" + (pixels.map { ", pixel_values \($0.shape)" } ?? "")
                    + (f.visionFeatures.map { ", vision_features \($0.shape)" } ?? "")
                    + (f.visualTokens.map { ", visual_tokens \($0.shape)" } ?? "") + ", logits \(f.logits.shape)")
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise a checkpoint: config, parameters per part, dtypes.")

    @Option(help: "Checkpoint folder.") var model: String
    @Option(help: "The weight format the memory plan assumes (native, f32, bf16 or q8_0).") var weights: WeightFormat =
        .native

    func run() throws {
        try reportingInputErrors {
            let config = try EagleConfig.load(directory: model)
            let ckpt = try Checkpoint(path: model)
            try EagleWeights.check(ckpt, config: config)
            var params = [String: Int](), dtypes = [String: Int]()
            for name in ckpt.names {
                guard let info = ckpt.info(name) else { continue }
                let part =
                    name.hasPrefix("vision_model.")
                    ? "vision_model"
                    : name.hasPrefix("mlp1.") ? "mlp1" : name.hasPrefix("language_model.") ? "language_model" : "other"
                params[part, default: 0] += info.elementCount
                dtypes[info.dtype.rawValue, default: 0] += 1
            }
            let v = config.vision, t = config.text
            print("\(model)")
            print(
                "  vision: SigLIP, hidden \(v.hiddenSize), \(v.numHiddenLayers) layers, \(v.numAttentionHeads) heads, MLP \(v.intermediateSize), \(v.imageSize) px / patch \(v.patchSize)"
            )
            print("  connector: pixel shuffle \(config.downsampleRatio) → mlp1 \(4 * v.hiddenSize) → \(t.hiddenSize)")
            print(
                "  language: Qwen2, hidden \(t.hiddenSize), \(t.numHiddenLayers) layers, \(t.numAttentionHeads) heads over \(t.numKeyValueHeads) KV heads, MLP \(t.intermediateSize), vocab \(t.vocabSize), θ \(t.ropeTheta), context \(t.maxPositionEmbeddings)\(t.tieWordEmbeddings ? ", tied embeddings" : "")"
            )
            print(
                "  tiles: \(config.tileSize) px, \(config.minTiles)…\(config.maxTiles)\(config.useThumbnail ? " + thumbnail" : ""), \(config.tokensPerTile) tokens per tile; <IMG_CONTEXT> = \(config.imageTokenIndex)"
            )
            for part in ["vision_model", "mlp1", "language_model", "other"] where params[part] != nil {
                print("  parameters \(part): \(params[part]!)")
            }
            print("  parameters total: \(params.values.reduce(0, +))")
            let plan = MemoryPlan(
                config: config, checkpoint: ckpt, contextTokens: t.maxPositionEmbeddings, weights: weights,
                availableBytes: availableMemoryBytes())
            print("  memory at the full context: \(plan)\(plan.fits ? "" : " — does not fit; use --max-context")")
            print(
                "  dtypes: "
                    + dtypes.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))
        }
    }
}

extension WeightFormat: ExpressibleByArgument {}
