// From files to an answer: a checkpoint folder (config.json, weights, tokenizer.json,
// generation_config.json), images and a question → prompt ids and pixel_values → tokens, streamed.
//
// Stop tokens come from generation_config.json's eos_token_id, else text_config's, else the tokenizer's
// `<|im_end|>` and `<|endoftext|>`. The image token id comes from config.json's image_token_index only.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
#if canImport(Glibc)
import Glibc
#endif
import Imaging
import Qwen2
import QwenAttention
import SafeTensors
import Tensor
import Tiler
import Tokenizer

/// A loaded model with what it needs around it.
public final class EaglePipeline: Sendable {
    public let directory: String
    public let model: EagleModel
    public let tokenizer: Tokenizer?
    public let tiler: Tiler
    public let stopTokens: Set<Int>
    /// Why the checkpoint's generation_config.json was not used, when it exists but could not be; the CLI says
    /// it on stderr.
    public let generationConfigProblem: String?

    /// `scanWeights`: reject NaN/±Inf weights at load (see `EagleModel.load`). `plannedContext`: refuse, before any
    /// weight is read, a checkpoint whose weights plus a context of that many tokens cannot fit (`MemoryPlan`).
    /// `weights`: see `EagleModel.load`.
    public init(
        directory: String, scanWeights: Bool = true, plannedContext: Int? = nil, weights: WeightFormat = .native
    ) throws {
        self.directory = directory
        if let l = plannedContext {
            let plan = try MemoryPlan.read(directory: directory, contextTokens: l, weights: weights)
            if !plan.fits {
                // Name the smallest weight format that would fit, if one does.
                let other = [WeightFormat.native, .q8_0].filter { $0 != weights }.lazy.compactMap {
                    f -> (WeightFormat, MemoryPlan)? in
                    guard let p = try? MemoryPlan.read(directory: directory, contextTokens: l, weights: f), p.fits
                    else { return nil }
                    return (f, p)
                }.first
                let advice =
                    other.map { "Use --weights \($0.0.rawValue) (it would need \(gib($0.1.totalBytes))), or " }
                    ?? "Use "
                let rest = "a smaller --max-context or --max-new-tokens, or a machine with more memory."
                try plan.check(source: directory, advice: advice + rest)
            }
        }
        model = try EagleModel.load(directory: directory, scanForNonFinite: scanWeights, weights: weights)
        let tokPath = Path.join(directory, "tokenizer.json")
        tokenizer = FileManager.default.fileExists(atPath: tokPath) ? try Tokenizer(tokenizerJSON: tokPath) : nil
        tiler = try Tiler(model.config.tiling)
        (stopTokens, generationConfigProblem) = EaglePipeline.readStopTokens(directory: directory, tokenizer: tokenizer)
    }

    /// A context longer than the model's positions (or below 2 tokens) is refused: RoPE was trained to
    /// max_position_embeddings, and the KV cache is sized by it.
    public static func checkMaxContext(_ maxContext: Int?, config: EagleConfig) throws {
        guard let m = maxContext else { return }
        let limit = config.text.maxPositionEmbeddings
        guard m >= 2 && m <= limit else {
            throw EagleError.badParameter(
                name: "max-context", value: "\(m)", expected: "2 … \(limit) (the model's max_position_embeddings)")
        }
    }

    static func ids(_ v: Any?) -> [Int]? {
        if let n = v as? Int { return [n] }
        if let a = v as? [Any] {
            let r = a.compactMap { $0 as? Int }; return r.count == a.count && !r.isEmpty ? r : nil
        }
        return nil
    }

    /// The stop tokens: generation_config.json's `eos_token_id`, else the text config's, else the tokenizer's
    /// `<|im_end|>` and `<|endoftext|>`; and why generation_config.json was not used when it exists but could not
    /// be (a file that is missing is normal and says nothing).
    static func readStopTokens(directory: String, tokenizer: Tokenizer?) -> (Set<Int>, String?) {
        func json(_ name: String) -> [String: Any]? {
            let p = Path.join(directory, name)
            guard let d = try? readRegularFile(p, limit: 16 << 20) else { return nil }
            return (try? JSON.parse(d)) as? [String: Any]
        }
        var problem: String? = nil
        let generationPath = Path.join(directory, "generation_config.json")
        if Path.isDirectory(generationPath) != nil {
            var why = ""
            do {
                let bytes = try readRegularFile(generationPath, limit: 16 << 20)
                if let g = (try? JSON.parse(bytes)) as? [String: Any] {
                    if let e = ids(g["eos_token_id"]) { return (Set(e), nil) }
                    why =
                        g["eos_token_id"] == nil
                        ? "it has no eos_token_id" : "its eos_token_id is not an id or a list of ids"
                } else {
                    why = JSON.whyNot(bytes, [String: Any].self, what: "an object") ?? "not a JSON object"
                }
            } catch {
                why = "\(error)"
            }
            problem = "generation_config.json ignored: \(why); the stop tokens come from "
        }
        if let c = json("config.json"), let t = (c["text_config"] ?? c["llm_config"]) as? [String: Any],
            let e = ids(t["eos_token_id"])
        {
            return (Set(e), problem.map { $0 + "config.json's text_config" })
        }
        return (
            Set(["<|im_end|>", "<|endoftext|>"].compactMap { tokenizer?.id(of: $0) }),
            problem.map { $0 + "the tokenizer (<|im_end|>, <|endoftext|>)" }
        )
    }

    /// A prepared prompt.
    public struct Prepared: Sendable {
        public var text: String
        public var ids: [Int]
        /// (N, 3, S, S), N = all tiles of all images in order; nil without images.
        public var pixelValues: Tensor?
        /// Tiles of each image (grid tiles + thumbnail).
        public var tilesPerImage: [Int]
        public var grids: [TileGrid]
    }

    /// Tiles the images, builds the Eagle prompt and tokenises it: one user message, its images before the question.
    public func prepare(images: [RGBImage], question: String, system: String? = nil) throws -> Prepared {
        try prepare(conversation: [Turn(role: "user", images: images, text: question)], system: system)
    }

    /// One message of a conversation: its role ("system", "user" or "assistant"), its images (placed before its
    /// text, in order) and its text.
    public struct Turn: Sendable {
        public var role: String
        public var images: [RGBImage]
        public var text: String
        public init(role: String, images: [RGBImage] = [], text: String) {
            self.role = role; self.images = images; self.text = text
        }
    }

    /// Tiles every message's images, builds the ChatML prompt of the whole conversation (the default system message
    /// first unless it starts with one; images numbered across it, as the HF processor does) and tokenises it. One
    /// user message is exactly `prepare(images:question:system:)`, so `eaglet generate` and `eaglet serve` build the
    /// same prompt from the same question.
    public func prepare(conversation: [Turn], system: String? = nil) throws -> Prepared {
        guard let tokenizer else { throw EagleError.noTokenizer(directory: directory) }
        var tiles = [Tensor](), counts = [Int](), grids = [TileGrid](), messages = [ChatMessage]()
        for turn in conversation {
            var media = [PromptMedia]()
            let first = counts.count + 1
            for image in turn.images {
                let g = tiler.grid(width: image.width, height: image.height)
                let p = tiler.pixelValues(image)
                grids.append(g); counts.append(p.shape[0]); tiles.append(p)
                media.append(.image(contextTokens: p.shape[0] * model.config.tokensPerTile))
            }
            let content = EaglePrompt.userContent(media: media, text: turn.text, firstImage: first)
            messages.append(ChatMessage(role: turn.role, content: content))
        }
        let text = EaglePrompt.chatML(messages, system: system)
        let ids = tokenizer.encode(text)
        let pixels = tiles.isEmpty ? nil : Tensor.concatenate(tiles, dim: 0)
        return Prepared(text: text, ids: ids, pixelValues: pixels, tilesPerImage: counts, grids: grids)
    }

    /// What one generation did: the loop's report (tokens and timing) and the prompt's sizes.
    public struct Result: Sendable {
        public var report: GenerationReport
        public var promptTokens: Int
        public var visualTokens: Int
        /// The new tokens, the stop token included when one was produced.
        public var tokens: [Int] { report.tokens }
        public var timeToFirstToken: Double { report.timeToFirstToken }
        public var totalSeconds: Double { report.totalSeconds }
        /// Decode rate after the first token (tokens/s).
        public var tokensPerSecond: Double { report.tokensPerSecond }
    }

    /// A generation that passed `checkGeneration`: what to run and the new-token budget.
    public struct CheckedGeneration: Sendable {
        public let ids: [Int]
        public let pixelValues: Tensor?
        public let sampling: SamplingParameters
        /// min(maxNewTokens, context − prompt).
        public let budget: Int
    }

    /// What `generate` checks before it does any work, on its own: the sampling parameters and `maxNewTokens` in
    /// range, a prompt shorter than the context, every id in the vocabulary, one `<IMG_CONTEXT>` per visual token of
    /// `pixelValues` (N tiles · tokens per tile), and memory for the KV cache. The server calls it before it answers
    /// 200, so these refusals keep their status even when the answer is streamed, then runs what it returns.
    public func checkGeneration(
        ids: [Int], pixelValues: Tensor?, maxNewTokens: Int, sampling: SamplingParameters = .init(),
        maxContext: Int? = nil
    ) throws -> CheckedGeneration {
        try sampling.validate()
        guard maxNewTokens >= 0 else {
            throw EagleError.badParameter(name: "max-new-tokens", value: "\(maxNewTokens)", expected: "an integer ≥ 0")
        }
        guard !ids.isEmpty else { throw EagleError.emptyPrompt }
        try EaglePipeline.checkMaxContext(maxContext, config: model.config)
        let context = maxContext ?? model.config.text.maxPositionEmbeddings
        guard ids.count < context else {
            throw EagleError.promptTooLong(tokens: ids.count, maxNewTokens: maxNewTokens, context: context)
        }
        let tiles = pixelValues?.shape.first ?? 0
        _ = try model.config.imageSlots(ids: ids, visualTokens: tiles * model.config.tokensPerTile)
        let budget = min(maxNewTokens, context - ids.count)
        try MemoryPlan(
            residentWeightsOf: model.config, contextTokens: ids.count + budget + 1, prefillTokens: ids.count,
            availableBytes: availableMemoryBytes()
        ).check(source: directory)
        return CheckedGeneration(ids: ids, pixelValues: pixelValues, sampling: sampling, budget: budget)
    }

    /// Generates after `ids` (with `pixelValues` spliced in), calling `onToken` with each new id (an error it throws
    /// stops the generation and is rethrown). The time to the first token includes the vision tower.
    public func generate(
        ids: [Int], pixelValues: Tensor?, maxNewTokens: Int, sampling: SamplingParameters = .init(),
        maxContext: Int? = nil, compute: Compute = .fast, onToken: (Int) throws -> Void = { _ in }
    ) throws -> Result {
        try generate(
            try checkGeneration(
                ids: ids, pixelValues: pixelValues, maxNewTokens: maxNewTokens, sampling: sampling,
                maxContext: maxContext),
            compute: compute, onToken: onToken)
    }

    /// Runs a checked generation (see `generate(ids:pixelValues:…)`).
    public func generate(
        _ checked: CheckedGeneration, compute: Compute = .fast, onToken: (Int) throws -> Void = { _ in }
    ) throws -> Result {
        let ids = checked.ids, budget = checked.budget
        let started = ContinuousClock.now
        var visual: Tensor? = nil
        if let p = checked.pixelValues, p.shape.first ?? 0 > 0 {
            visual = try model.visualTokens(
                fromFeatures: try model.visionFeatures(p, compute: compute), compute: compute)
        }
        var decoding = Qwen2ForCausalLM.Decoding(
            model: model.languageModel, inputsEmbeds: try model.splice(ids: ids, visual: visual),
            capacity: ids.count + budget + 1, compute: compute)
        var sampler = Sampler(checked.sampling)
        let report = try Qwen2.generate(
            &decoding, maxNewTokens: budget, stopTokens: stopTokens, started: started,
            choose: { logits, chosen in sampler.next(logits: logits, context: ids + chosen) },
            onToken: onToken)
        return Result(report: report, promptTokens: ids.count, visualTokens: visual?.shape[0] ?? 0)
    }
}
