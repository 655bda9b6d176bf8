// `eaglet serve`: the HTTP side. Hummingbird 2 (on SwiftNIO) parses HTTP/1.1 on its event loops and calls
// `ChatResponder.respond` for each request in a task of its own; the responder routes by method and path:
//
//   POST /v1/chat/completions   the API key, the body (at most --max-body-bytes), `ChatRequest.parse`, the queue,
//                               then the events of the generation as one JSON object or as server-sent events
//   GET  /v1/models             the checkpoint folder's name
//   GET  /health                {"status":"ok","running":R,"waiting":W}
//   GET  /                      the page (Page.swift)
//
// Anything else is 404 or 405 with OpenAI's error object. Connections stay open between requests (keep-alive), as
// the openai clients expect. A client that closes its connection sets its request's cancellation flag (noticed by
// the connection's `ConnectionWatch`, and by a failed write while it streams); the generation stops at the next
// token. SIGTERM or SIGINT: the requests still waiting are refused (503), no new connection is accepted, the
// generation in flight finishes and is delivered, then `run` returns (the process exits 0). A second signal exits at
// once.
import Dispatch
import Eagle
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import _Essentials

/// How the server listens and what it accepts.
public struct ServeOptions: Sendable {
    public var host = "127.0.0.1"
    /// 0: any free port (the one chosen is reported to `onListening`).
    public var port = 8000
    /// When set, every /v1 request needs `Authorization: Bearer KEY`.
    public var apiKey: String?
    /// Requests that may wait behind the one running; more get 429.
    public var maxQueue = 16
    /// Larger bodies get 413 (images travel inside the body, base64: 4/3 of their bytes).
    public var maxBodyBytes = 32 << 20
    /// `file://` images and videos must lie in this folder (resolved); nil: `file://` URLs are refused.
    public var mediaRoot: String?

    public init() {}
}

/// The request context: Hummingbird's, plus the connection (to close it after a 413).
public struct ServeContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Routes each request; see the file's header.
public struct ChatResponder: HTTPResponder {
    public typealias Context = ServeContext
    public let queue: GenerationQueue
    public let model: ChatModel
    public let options: ServeOptions
    let started = unixTime()

    public init(queue: GenerationQueue, options: ServeOptions) {
        self.queue = queue; self.model = queue.model; self.options = options
    }

    public func respond(to request: Request, context: ServeContext) async throws -> Response {
        let path = request.uri.path
        let method = request.method
        switch path {
        case "/v1/chat/completions":
            guard method == .post else { return reply(.methodNotAllowed(method.rawValue, path, allowed: "POST")) }
            if let refusal = checkKey(request) { return reply(refusal) }
            return try await chat(request, context: context)
        case "/v1/models":
            guard method == .get else { return reply(.methodNotAllowed(method.rawValue, path, allowed: "GET")) }
            if let refusal = checkKey(request) { return reply(refusal) }
            return json(200, Wire.models(model.name, created: started))
        case "/health":
            guard method == .get else { return reply(.methodNotAllowed(method.rawValue, path, allowed: "GET")) }
            let load = await queue.load
            return json(200, "{\"status\":\"ok\",\"running\":\(load.running),\"waiting\":\(load.waiting)}")
        case "/", "/index.html":
            guard method == .get else { return reply(.methodNotAllowed(method.rawValue, path, allowed: "GET")) }
            return Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: Page.html)))
        default:
            return reply(.notFound(path))
        }
    }

    /// nil when no key is set or the request carries it (compared in constant time).
    func checkKey(_ request: Request) -> ServeError? {
        guard let key = options.apiKey else { return nil }
        let sent = Array((request.headers[.authorization] ?? "").utf8), want = Array(("Bearer " + key).utf8)
        var diff = sent.count ^ want.count
        for i in 0..<want.count { diff |= Int(want[i] ^ (i < sent.count ? sent[i] : 0)) }
        return diff == 0 ? nil : .unauthorized
    }

    func chat(_ request: Request, context: ServeContext) async throws -> Response {
        let limit = options.maxBodyBytes
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            return closing(.bodyTooLarge(limit: limit), context.channel)
        }
        let bytes: ByteBuffer
        do { bytes = try await request.body.collect(upTo: limit) } catch is NIOTooManyBytesError {
            return closing(.bodyTooLarge(limit: limit), context.channel)
        }
        let r: ChatRequest
        do throws(ServeError) {
            r = try ChatRequest.parse(Array(buffer: bytes), mediaRoot: options.mediaRoot)
            if let m = r.maxTokens, m >= model.context {
                throw ServeError.invalid(
                    "\(r.maxTokensField) \(m) is beyond the context of \(model.context) tokens (which also holds the prompt)",
                    param: r.maxTokensField, code: "context_length_exceeded")
            }
        } catch {
            return reply(error)
        }
        // From here on, a client that goes away cancels its request: waiting, it gives its place back; running, its
        // generation stops at the next token.
        let cancel = CancellationFlag(), queue = self.queue
        let watch = ConnectionWatch.of(context.channel)
        watch?.watch(cancel) {
            cancel.cancel()
            Task { await queue.withdrawCancelled() }
        }
        let events: AsyncStream<GenerationEvent>
        do throws(ServeError) { events = try await queue.submit(r, cancel: cancel) } catch {
            watch?.unwatch(cancel)
            return reply(error)
        }
        let it = EventReader(events)
        // The first event decides the status: a refusal, or the generation begins.
        let first = await it.next()
        guard case let .started(_, waited)? = first else {
            watch?.unwatch(cancel)
            if case let .failed(e)? = first { return reply(e) }
            return reply(.internal("the request was cancelled before it started"))
        }
        let who = Wire.Identity.new(model: model.name)
        if r.stream { return stream(who, r, events: it, cancel: cancel, watch: watch, waited: waited) }
        defer { watch?.unwatch(cancel) }
        var text = ""
        while let e = await it.next() {
            switch e {
            case let .text(t): text += t
            case let .finished(c):
                log(r, c, waited: waited)
                return json(200, Wire.completion(who, text: text, c))
            case let .failed(e): return reply(e)
            case .started: break
            }
        }
        return reply(.internal("the generation was cancelled"))
    }

    /// Server-sent events: the role chunk, a chunk per piece of text, the finish chunk, `[DONE]`.
    func stream(
        _ who: Wire.Identity, _ r: ChatRequest, events it: EventReader, cancel: CancellationFlag,
        watch: ConnectionWatch?, waited: Double
    ) -> Response {
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
        return Response(
            status: .ok, headers: headers,
            body: .init { writer in
                func send(_ data: String) async throws { try await writer.write(ByteBuffer(string: Wire.event(data))) }
                do {
                    try await send(Wire.chunk(who, role: true, content: ""))
                    while let e = await it.next() {
                        switch e {
                        case let .text(t): try await send(Wire.chunk(who, content: t))
                        case let .finished(c):
                            try await send(Wire.chunk(who, finishReason: c.finishReason))
                            if r.includeUsage { try await send(Wire.usageChunk(who, c)) }
                            try await writer.write(ByteBuffer(string: Wire.done))
                            log(r, c, waited: waited)
                        case let .failed(e):
                            try await send(e.json)
                            try await writer.write(ByteBuffer(string: Wire.done))
                        case .started: break
                        }
                    }
                    try await writer.finish(nil)
                    watch?.unwatch(cancel)
                } catch {
                    cancel.cancel() // the client went away: stop generating for it
                    watch?.unwatch(cancel)
                    throw error
                }
            })
    }

    /// One line on stderr per answered request.
    func log(_ r: ChatRequest, _ c: Completion, waited: Double) {
        printToStandardError(
            "eaglet serve: \(r.stream ? "streamed" : "answered") \(c.promptTokens) prompt + \(c.completionTokens) new "
                + "tokens (\(c.finishReason)); "
                + cFormat(
                    "waited %.1f ms, first token %.1f ms, %.0f tokens/s", waited * 1000, c.timeToFirstToken * 1000,
                    c.tokensPerSecond))
    }

    func json(_ status: Int, _ body: String) -> Response {
        Response(
            status: .init(code: status), headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    func reply(_ e: ServeError) -> Response { json(e.status, e.json) }

    /// `response`, after which the connection is closed (the rest of an oversized body is not read).
    func closing(_ error: ServeError, _ channel: any Channel) -> Response {
        let buffer = ByteBuffer(string: error.json)
        return Response(
            status: .init(code: error.status), headers: [.contentType: "application/json", .connection: "close"],
            body: .init(contentLength: buffer.readableBytes) { writer in
                try await writer.write(buffer)
                try await writer.finish(nil)
                channel.close(promise: nil)
            })
    }
}

/// The whole server: the queue, the responder, the listening socket, and the shutdown on SIGTERM or SIGINT.
public struct ChatServer: Sendable {
    public let model: ChatModel
    public let options: ServeOptions

    public init(model: ChatModel, options: ServeOptions) {
        self.model = model; self.options = options
    }

    /// Listens until SIGTERM or SIGINT, then shuts down gracefully (see the file's header) and returns.
    /// `onListening(host, port)` is called once the socket is bound (with the port chosen when `options.port` is 0).
    public func run(onListening: @escaping @Sendable (String, Int) -> Void) async throws {
        var logger = Logger(label: "eaglet.serve") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .error
        let queue = GenerationQueue(model: model, maxWaiting: options.maxQueue)
        let host = options.host
        let app = Application(
            responder: ChatResponder(queue: queue, options: options),
            server: .http1(configuration: .init(additionalChannelHandlers: [ConnectionWatch()])),
            configuration: ApplicationConfiguration(address: .hostname(host, port: options.port)),
            onServerRunning: { channel in onListening(host, channel.localAddress?.port ?? 0) },
            logger: logger)
        let group = ServiceGroup(services: [app], logger: logger)
        let signals = ShutdownSignals { name in
            printToStandardError(
                "eaglet serve: \(name): finishing the generation in flight, refusing new requests (again to quit now)")
            Task {
                let refused = await queue.drain()
                if refused > 0 { printToStandardError("eaglet serve: refused \(refused) waiting requests") }
                await group.triggerGracefulShutdown()
            }
        }
        defer { signals.cancel() }
        do { try await group.run() } catch let e as IOError {
            throw ListenError(
                description: "cannot listen on \(host):\(options.port): \(String(cString: strerror(e.errnoCode)))"
                    + (e.errnoCode == EADDRINUSE ? " (give another --port, or --port 0 for any free one)" : ""))
        }
    }
}

/// The socket could not be opened (the port is taken, the address is not this machine's, …).
public struct ListenError: Error, CustomStringConvertible {
    public let description: String
}

/// SIGTERM and SIGINT, caught: the first calls `onFirst` with the signal's name, a second one exits at once
/// (status 128 + signal, as the shell reports a killed process).
// @unchecked: `sources` is set once in init and only cancelled afterwards (DispatchSource is thread-safe).
final class ShutdownSignals: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]

    init(onFirst: @escaping @Sendable (String) -> Void) {
        let seen = CancellationFlag()
        sources = [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")].map { number, name in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if seen.isCancelled { exit(128 + number) }
                seen.cancel()
                onFirst(name)
            }
            source.resume()
            return source
        }
    }

    func cancel() { for s in sources { s.cancel() } }
}

/// A request's events, read first by its handler (the first event decides the status) and then by its response body
/// (the stream): one reader at a time, one after the other.
// @unchecked: the iterator is used by the handler until it returns the response, then only by the body's writer.
final class EventReader: @unchecked Sendable {
    private var iterator: AsyncStream<GenerationEvent>.Iterator
    init(_ events: AsyncStream<GenerationEvent>) { iterator = events.makeAsyncIterator() }
    func next() async -> GenerationEvent? { await iterator.next() }
}
