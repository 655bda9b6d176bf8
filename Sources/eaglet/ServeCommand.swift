// `eaglet serve`: the checkpoint behind an OpenAI-compatible HTTP server (module Serve, chapter 17, docs/cli.md).
// The model is loaded (and its memory planned for the whole context) before the socket opens; the address goes to
// stderr as `eaglet serve: listening on http://HOST:PORT (model NAME)`, so a script that started it with --port 0
// can read the port chosen.
import ArgumentParser
import Dispatch
import Eaglet
import Foundation
import Serve
import _Essentials

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a checkpoint over HTTP: OpenAI's chat completions API (images, video, streaming) and a page.",
        discussion: """
            POST /v1/chat/completions (messages with text, image_url and video_url parts; max_tokens, temperature, \
            top_p, seed, stop, stream), GET /v1/models, GET /health, and a page at / to try it in a browser. One \
            generation runs at a time; up to --max-queue requests wait, more get 429. SIGTERM or Ctrl-C finishes the \
            generation in flight, refuses new requests and exits 0.
            """)

    @OptionGroup var checkpoint: CheckpointOptions
    @Option(help: "Address to listen on (0.0.0.0: every interface).") var host = "127.0.0.1"
    @Option(help: "TCP port (0: any free one, printed on stderr).") var port = 8000
    @Option(help: "Require 'Authorization: Bearer KEY' on /v1 requests.") var apiKey: String?
    @Option(help: "Requests that may wait while one runs; more are refused with 429.") var maxQueue = 16
    @Option(help: "Largest request body in bytes (images travel in it, base64); larger ones get 413.")
    var maxBodyBytes = 32 << 20
    @Option(help: "Folder whose files requests may name as file:// URLs (default: none may).") var mediaRoot: String?
    @Option(help: "Context length L (default: the text config's max_position_embeddings).") var maxContext: Int?
    /// Milliseconds to sleep after each token: only to watch a stream arrive (make serve-page-check) or to test
    /// cancellation and shutdown while a generation runs.
    @Option(help: .hidden) var decodeDelayMs: Double = 0

    func validate() throws {
        if !(0...65535).contains(port) { throw ValidationError("--port must be in 0 … 65535") }
        if maxQueue < 0 { throw ValidationError("--max-queue must be at least 0") }
        if maxBodyBytes < 1024 { throw ValidationError("--max-body-bytes must be at least 1024") }
        if let k = apiKey, k.isEmpty { throw ValidationError("--api-key must not be empty") }
        if !(decodeDelayMs >= 0 && decodeDelayMs <= 10_000) { throw ValidationError("bad --decode-delay-ms") }
    }

    func run() throws {
        try reportingInputErrors {
            // A parent may have started us with these blocked; the shutdown needs them delivered.
            var unblock = sigset_t()
            sigemptyset(&unblock)
            sigaddset(&unblock, SIGTERM)
            sigaddset(&unblock, SIGINT)
            pthread_sigmask(SIG_UNBLOCK, &unblock, nil)

            let model = checkpoint.model
            let config = try EagleConfig.load(directory: model)
            try EaglePipeline.checkMaxContext(maxContext, config: config)
            var options = ServeOptions()
            options.host = host; options.port = port; options.apiKey = apiKey; options.maxQueue = maxQueue
            options.maxBodyBytes = maxBodyBytes
            if let root = mediaRoot {
                guard Path.isDirectory(root) == true else {
                    throw InputError(description: "\(root): --media-root must be a folder")
                }
                options.mediaRoot = ChatRequest.resolvedFolder(root)
            }
            let context = maxContext ?? config.text.maxPositionEmbeddings
            // Every request may use the whole context: plan for it before loading.
            let pipeline = try checkpoint.pipeline(plannedContext: context)
            let name = URL(fileURLWithPath: model).standardizedFileURL.lastPathComponent
            let chat = ChatModel(
                pipeline: pipeline, name: name, context: context, maxImagePixels: checkpoint.maxImagePixels,
                decodeDelay: decodeDelayMs / 1000)
            let server = ChatServer(model: chat, options: options)
            let outcome = Outcome()
            let done = DispatchSemaphore(value: 0)
            // The server is async; this thread (the main one, outside Swift's cooperative pool) waits for it.
            Task {
                do {
                    try await server.run { host, port in
                        printToStandardError("eaglet serve: listening on http://\(host):\(port) (model \(name))")
                    }
                } catch let e as ListenError {
                    outcome.fail(e.description)
                } catch {
                    outcome.fail("cannot serve on \(host):\(port): \(error)")
                }
                done.signal()
            }
            done.wait()
            if let failure = outcome.failure { throw InputError(description: failure) }
            printToStandardError("eaglet serve: stopped")
        }
    }
}

/// How the server task ended, handed to the waiting main thread.
// @unchecked: `message` is only read and written with `lock` held.
final class Outcome: @unchecked Sendable {
    private let lock = Mutex()
    private var message: String?

    func fail(_ m: String) {
        lock.lock()
        message = m
        lock.unlock()
    }

    var failure: String? {
        lock.lock()
        defer { lock.unlock() }
        return message
    }
}
