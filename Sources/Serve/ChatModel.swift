// One request from checked JSON to tokens, on the generation thread: decode the images (or sample the video), build
// the prompt exactly as `eaglet generate` does (`EaglePipeline.prepare(conversation:)`, or `VideoPrompt` for a video
// with ADS), check it against the context, then run the one generation loop (`EaglePipeline.generate`) and hand each
// piece of text to the request's handler as it is decoded.
//
// The events of one request, in order: `.started` once the prompt is built and has passed every check the
// generation makes before it starts (`EaglePipeline.checkGeneration`), then `.text` pieces, then `.finished`; or
// `.failed` alone, before anything else — so every refusal still gets its HTTP status, even in streaming mode, while
// a stream's status line and first chunk go out as the generation begins, not after its first token. Between tokens
// the request's cancellation flag is read: a client that went away stops its generation there.
import ADS
import Eagle
import EagleVideo
import Foundation
import Imaging
import Qwen2
import Synchronization
import Tensor
import Tokenizer
import Video
import _Essentials

/// What the generation tells the request's handler.
public enum GenerationEvent: Sendable {
    /// The prompt is built and checked, the generation begins: the prompt's size and how long the request waited
    /// for the model.
    case started(promptTokens: Int, queueSeconds: Double)
    /// A piece of the answer (complete UTF-8 characters, stop strings removed).
    case text(String)
    case finished(Completion)
    /// The request was refused (before `.started`), or its generation failed (after: a server error).
    case failed(ServeError)
}

/// How a generation ended.
public struct Completion: Sendable, Equatable {
    /// "stop" (a stop token or stop string) or "length" (max_tokens or the context ran out).
    public var finishReason: String
    public var promptTokens: Int
    /// New tokens, the stop token included when one was produced (as `eaglet generate` counts them).
    public var completionTokens: Int
    /// From the start of the generation (after the queue) to the first token, vision tower included.
    public var timeToFirstToken: Double
    /// Decode rate after the first token.
    public var tokensPerSecond: Double
}

/// Set when a request's client goes away (or the handler stops listening); read by the generation between tokens.
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func cancel() { flag.store(true, ordering: .relaxed) }
    public var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

/// The loaded checkpoint and the limits it is served with.
public final class ChatModel: Sendable {
    public let pipeline: EaglePipeline
    /// What /v1/models lists and responses carry: the checkpoint folder's name.
    public let name: String
    /// The context L: prompt + new tokens ≤ L.
    public let context: Int
    /// Images and video frames with more pixels are refused.
    public let maxImagePixels: Int
    /// Seconds to sleep after each token (0: none); only to watch a stream arrive or to test cancellation.
    public let decodeDelay: Double

    public init(
        pipeline: EaglePipeline, name: String, context: Int? = nil, maxImagePixels: Int = RGBImage.defaultMaxPixels,
        decodeDelay: Double = 0
    ) {
        self.pipeline = pipeline; self.name = name; self.maxImagePixels = maxImagePixels; self.decodeDelay = decodeDelay
        self.context = context ?? pipeline.model.config.text.maxPositionEmbeddings
    }

    /// Why a generation stopped early, thrown from the token callback out of the generation loop.
    enum EarlyStop: Error {
        case cancelled
        case stopString
    }

    /// The prompt ids and pixel values for `r`, built as `eaglet generate` builds them.
    public func prepare(_ r: ChatRequest) throws(ServeError) -> (ids: [Int], pixels: Tensor?) {
        do {
            if let user = r.messages.last, let video = user.video {
                let system = r.messages.count == 2 ? r.messages[0].text : nil
                let v: VideoPrompt
                do {
                    v = try VideoPrompt.prepare(
                        pipeline: pipeline, images: try user.images.map(decode), video: video.path, question: user.text,
                        system: system, maxContext: context, maxPixels: maxImagePixels)
                } catch let e as VideoError {
                    throw ServeError.invalid("\(video.param): \(e)", param: video.param)
                } catch let e as FrameSamplingError {
                    throw ServeError.invalid("\(video.param): \(e)", param: video.param)
                } catch let e as ADSError {
                    throw ServeError.invalid(
                        "\(video.param): \(e)", param: video.param, code: "context_length_exceeded")
                }
                return (v.ids, v.pixels)
            }
            let turns = try r.messages.map {
                EaglePipeline.Turn(role: $0.role, images: try $0.images.map(decode), text: $0.text)
            }
            let p = try pipeline.prepare(conversation: turns)
            return (p.ids, p.pixelValues)
        } catch let e as ServeError {
            throw e
        } catch {
            throw ServeError.invalid("\(error)", param: "messages")
        }
    }

    /// An image of the request, decoded under the pixel limit; its errors name the request field.
    func decode(_ source: ChatRequest.ImageSource) throws(ServeError) -> RGBImage {
        do {
            switch source {
            case let .bytes(b, param): return try RGBImage.decode(b, file: param, maxPixels: maxImagePixels)
            case let .file(path, _): return try RGBImage.load(path, maxPixels: maxImagePixels)
            }
        } catch {
            switch source {
            case let .bytes(_, param), let .file(_, param):
                throw .invalid("\(error)", param: param, code: "invalid_image")
            }
        }
    }

    /// How many new tokens `r` may have after a prompt of `promptTokens`: max_tokens, or all the context leaves.
    public func budget(_ r: ChatRequest, promptTokens: Int) throws(ServeError) -> Int {
        guard promptTokens < context else {
            throw .invalid(
                "the prompt is \(promptTokens) tokens and the context is \(context): shorten the messages or send fewer or smaller images",
                param: "messages", code: "context_length_exceeded")
        }
        let room = context - promptTokens
        guard let m = r.maxTokens else { return room }
        guard m <= room else {
            throw .invalid(
                "\(r.maxTokensField) \(m) + the prompt's \(promptTokens) tokens exceed the context of \(context) tokens: ask for at most \(room)",
                param: r.maxTokensField, code: "context_length_exceeded")
        }
        return m
    }

    /// Runs `r` to its end on the calling thread (the generation thread), sending events to `emit`. `queued`: when
    /// the request was admitted, for its time in the queue.
    public func run(
        _ r: ChatRequest, cancel: CancellationFlag, queued: ContinuousClock.Instant = .now,
        emit: (GenerationEvent) -> Void
    ) {
        if cancel.isCancelled { return }
        let waited = secondsSince(queued)
        let checked: EaglePipeline.CheckedGeneration
        do {
            let (ids, pixels) = try prepare(r)
            checked = try pipeline.checkGeneration(
                ids: ids, pixelValues: pixels, maxNewTokens: try budget(r, promptTokens: ids.count),
                sampling: r.sampling, maxContext: context)
        } catch let e as ServeError {
            emit(.failed(e))
            return
        } catch {
            // The text holds <IMG_CONTEXT> of its own, an id outside the vocabulary, a KV cache that does not fit.
            emit(.failed(.invalid("\(error)", param: "messages")))
            return
        }
        guard let tokenizer = pipeline.tokenizer else {
            emit(.failed(.internal("\(pipeline.directory) has no tokenizer.json")))
            return
        }
        var decoder = StreamingDecoder(tokenizer: tokenizer, skipSpecialTokens: true)
        var stops = StopStrings(r.stop)
        var tokens = [Int](), first = 0.0
        let promptTokens = checked.ids.count
        emit(.started(promptTokens: promptTokens, queueSeconds: waited))
        let t0 = ContinuousClock.now
        func send(_ text: String) { if !text.isEmpty { emit(.text(text)) } }
        var reason = "length"
        do {
            _ = try pipeline.generate(checked) { id in
                if cancel.isCancelled { throw EarlyStop.cancelled }
                if tokens.isEmpty { first = secondsSince(t0) }
                tokens.append(id)
                let (text, stopped) = stops.push((try? decoder.push(id)) ?? "")
                send(text)
                if stopped { throw EarlyStop.stopString }
                if decodeDelay > 0 { Thread.sleep(forTimeInterval: decodeDelay) }
            }
            let (text, stopped) = stops.push(decoder.finish())
            send(text + (stopped ? "" : stops.finish()))
            if stopped || tokens.last.map(pipeline.stopTokens.contains) == true { reason = "stop" }
        } catch EarlyStop.stopString {
            reason = "stop"
        } catch EarlyStop.cancelled {
            printToStandardError("eaglet serve: cancelled after \(tokens.count) new tokens: the client went away")
            return
        } catch {
            // Past checkGeneration, a failure is the server's (a stream carries it as its last event).
            emit(.failed(.internal("the generation failed: \(error)")))
            return
        }
        let total = secondsSince(t0)
        emit(
            .finished(
                Completion(
                    finishReason: reason, promptTokens: promptTokens, completionTokens: tokens.count,
                    timeToFirstToken: first,
                    tokensPerSecond: tokens.count > 1 ? Double(tokens.count - 1) / max(total - first, 1e-9) : 0)))
    }
}
