// `eaglet serve` as its clients see it: the real server on a free loopback port, the official `openai` Python client
// for text, images, streaming and 8 concurrent clients (its greedy text must equal `eaglet generate`'s for the same
// image and question, and the PyTorch-trained checkpoint's expected answer), plain HTTP for every bad request (each
// answered with its status and OpenAI's error object, the server answering normally afterwards), a full queue, clients
// that go away, and SIGTERM.
import Foundation
import Serve
import Testing
import _TestSupport

let tinyEagle = repositoryRoot + "/Fixtures/tiny-eagle"
let tinyRandom = repositoryRoot + "/Fixtures/tiny-random"
let openAIClient = repositoryRoot + "/Tests/ServeTests/clients/openai_client.py"

/// The demo question of the tiny trained checkpoint and the answer its PyTorch training run expects.
let demo: (question: String, expected: String) = {
    let o =
        (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tinyEagle + "/demo.json"))))
        as? [String: Any]
    return (o?["question"] as? String ?? "", o?["expected"] as? String ?? "")
}()

/// python3 with the `openai` package (make test installs it from Tests/ServeTests/requirements.txt).
let openAIAvailable: Bool = {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", "import openai"]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return false }
    p.waitUntilExit()
    return p.terminationStatus == 0
}()

/// A chat completion body asking `question` about the PNG at `image` (none: text only).
func chatBody(
    _ question: String, image: String? = nil, maxTokens: Int = 32, stream: Bool = false, extra: String = ""
) -> [UInt8] {
    var content = [String]()
    if let image, let data = FileManager.default.contents(atPath: image) {
        let kind = image.hasSuffix(".jpg") ? "jpeg" : "png"
        content.append(
            "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/\(kind);base64,\(data.base64EncodedString())\"}}"
        )
    }
    content.append("{\"type\":\"text\",\"text\":\(jsonQuoted(question))}")
    return Array(
        ("{\"model\":\"tiny-eagle\",\"messages\":[{\"role\":\"user\",\"content\":[\(content.joined(separator: ","))]}],"
            + "\"max_tokens\":\(maxTokens),\"stream\":\(stream)\(extra)}").utf8)
}

func jsonQuoted(_ s: String) -> String {
    String(decoding: try! JSONSerialization.data(withJSONObject: [s]), as: UTF8.self).dropFirst().dropLast()
        .description
}

func object(_ text: String) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
}

/// `eaglet generate --json` for the same question: its text and prompt token count.
func generateText(model: String, image: String?, question: String, maxNewTokens: Int, extra: [String] = []) throws
    -> (text: String, promptTokens: Int)
{
    var args = ["generate", "--model", model, "--prompt", question, "--max-new-tokens", "\(maxNewTokens)", "--json"]
    if let image { args += ["--image", image] }
    let r = try runEaglet(args + extra)
    let o = try #require(object(r.stdout), "\(r.stderr)")
    return (o["text"] as? String ?? "", o["prompt_tokens"] as? Int ?? 0)
}

/// Runs the openai client script; its JSON result.
func runOpenAIClient(_ scenario: String, server: EagletServer, apiKey: String) throws -> [String: Any] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [
        "python3", openAIClient, scenario, "--base-url", server.baseURL, "--api-key", apiKey,
        "--image", tinyEagle + "/demo.png", "--question", demo.question, "--max-tokens", "32"
    ]
    let out = Pipe(), err = Pipe()
    p.standardOutput = out; p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: o, as: UTF8.self)
    return try #require(object(text), "openai_client.py \(scenario): \(String(decoding: e, as: UTF8.self))")
}

@Suite(.enabled(if: eagletBinary != nil, "the eaglet binary is not built (swift build -c release)"), .serialized)
struct ServeOverHTTP {
    /// The done-when check: the openai client's greedy answers, with and without streaming, equal `eaglet generate`'s
    /// for the same image and question — and the answer PyTorch's training run expects of this checkpoint. The
    /// client's own exceptions for the server's refusals carry OpenAI's error object.
    @Test(
        .enabled(
            if: openAIAvailable, "python3 with openai is missing: pip install -r Tests/ServeTests/requirements.txt"))
    func openAIClientGetsTheTextOfGenerateAndTypedErrors() throws {
        let server = try EagletServer(["--model", tinyEagle, "--api-key", "test-key"])
        let r = try runOpenAIClient("golden", server: server, apiKey: "test-key")
        let withImage = try generateText(
            model: tinyEagle, image: tinyEagle + "/demo.png", question: demo.question, maxNewTokens: 32)
        let textOnly = try generateText(model: tinyEagle, image: nil, question: demo.question, maxNewTokens: 32)
        #expect(withImage.text == demo.expected)
        #expect(r["models"] as? [String] == ["tiny-eagle"])
        let image = try #require(r["image"] as? [String: Any]),
            stream = try #require(r["image_stream"] as? [String: Any])
        let text = try #require(r["text_only"] as? [String: Any])
        #expect(image["text"] as? String == withImage.text)
        #expect(stream["text"] as? String == withImage.text)
        #expect(text["text"] as? String == textOnly.text)
        for answer in [image, stream] {
            #expect(answer["finish_reason"] as? String == "stop")
            #expect(answer["role"] as? String == "assistant")
            let usage = try #require(answer["usage"] as? [String: Any])
            #expect(usage["prompt_tokens"] as? Int == withImage.promptTokens)
            let n = try #require(usage["completion_tokens"] as? Int)
            #expect(usage["total_tokens"] as? Int == withImage.promptTokens + n)
        }
        #expect(image["object"] as? String == "chat.completion")
        #expect((image["id"] as? String)?.hasPrefix("chatcmpl-") == true)
        #expect(stream["objects"] as? [String] == ["chat.completion.chunk"])
        #expect((stream["chunks"] as? Int ?? 0) >= 4) // role, pieces, finish, usage
        let errors = try #require(r["errors"] as? [String: Any])
        let key = try #require(errors["wrong_key"] as? [String: Any])
        #expect(key["status"] as? Int == 401 && key["class"] as? String == "AuthenticationError")
        let bad = try #require(errors["negative_max_tokens"] as? [String: Any])
        #expect(bad["status"] as? Int == 400 && bad["class"] as? String == "BadRequestError")
        let body = try #require(bad["error"] as? [String: Any])
        let error = (body["error"] as? [String: Any]) ?? body
        #expect(error["param"] as? String == "max_tokens" && error["type"] as? String == "invalid_request_error")
        #expect(server.stop() == 0)
    }

    @Test(
        .enabled(
            if: openAIAvailable, "python3 with openai is missing: pip install -r Tests/ServeTests/requirements.txt"))
    func eightConcurrentClientsAllComplete() throws {
        let server = try EagletServer(["--model", tinyEagle, "--max-queue", "8"])
        let r = try runOpenAIClient("concurrent", server: server, apiKey: "none")
        #expect(r["errors"] as? [String] == [])
        #expect(r["texts"] as? [String] == Array(repeating: demo.expected, count: 8))
        #expect(server.stop() == 0)
    }

    /// Every bad request of issue 21, each with its status and error object; the server still answers afterwards.
    @Test func everyBadRequestIsAnsweredWithItsStatusAndErrorObject() throws {
        let key = "k3y"
        let server = try EagletServer([
            "--model", tinyEagle, "--api-key", key, "--max-body-bytes", "600000", "--max-image-pixels", "45000",
            "--media-root", tinyEagle
        ])
        let c = LoopbackClient(port: server.port)
        let auth = [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json")]
        func post(_ body: [UInt8], headers: [(String, String)] = auth) throws -> LoopbackClient.Reply {
            try c.send("POST", "/v1/chat/completions", headers: headers, body: body)
        }
        func post(_ body: String) throws -> LoopbackClient.Reply { try post(Array(body.utf8)) }
        let q = jsonQuoted(demo.question)
        func imageURL(_ url: String) -> String {
            "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\(jsonQuoted(url))}},{\"type\":\"text\",\"text\":\(q)}]}]}"
        }
        func withImage(_ path: String, kind: String = "png") -> String {
            let data = FileManager.default.contents(atPath: path) ?? Data()
            return imageURL("data:image/\(kind);base64,\(data.base64EncodedString())")
        }
        func params(_ extra: String) -> String {
            "{\"messages\":[{\"role\":\"user\",\"content\":\(q)}],\(extra)}"
        }
        let longPrompt = String(repeating: "shapes and colours ", count: 600)
        let gif = "data:image/png;base64," + Data("GIF89a\u{1}\u{0}\u{1}\u{0}".utf8).base64EncodedString()
        let png = FileManager.default.contents(atPath: tinyEagle + "/demo.png") ?? Data()
        let truncated = "data:image/png;base64," + png.prefix(png.count / 2).base64EncodedString()
        let cases: [(String, () throws -> LoopbackClient.Reply, Int, String?)] = [
            ("malformed JSON", { try post("{\"messages\": [") }, 400, nil),
            ("not an object", { try post("[1, 2]") }, 400, nil),
            ("missing messages", { try post("{\"model\":\"x\"}") }, 400, "messages"),
            ("empty messages", { try post("{\"messages\":[]}") }, 400, "messages"),
            ("messages not an array", { try post("{\"messages\":\"hi\"}") }, 400, "messages"),
            (
                "unknown role", { try post("{\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}") }, 400,
                "messages[0].role"
            ),
            ("missing role", { try post("{\"messages\":[{\"content\":\"hi\"}]}") }, 400, "messages[0].role"),
            (
                "content of the wrong type", { try post("{\"messages\":[{\"role\":\"user\",\"content\":7}]}") }, 400,
                "messages[0].content"
            ),
            (
                "unknown part type",
                {
                    try post("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}")
                }, 400, "messages[0].content[0].type"
            ),
            (
                "bad base64", { try post(imageURL("data:image/png;base64,@@not base64@@")) }, 400,
                "messages[0].content[0].image_url.url"
            ),
            (
                "an image that is not PNG or JPEG", { try post(imageURL(gif)) }, 400,
                "messages[0].content[0].image_url.url"
            ),
            (
                "a media type that is not PNG or JPEG", { try post(imageURL("data:image/gif;base64,R0lGOA==")) }, 400,
                "messages[0].content[0].image_url.url"
            ),
            ("a truncated PNG", { try post(imageURL(truncated)) }, 400, "messages[0].content[0].image_url.url"),
            (
                "an image over the pixel limit",
                { try post(withImage(repositoryRoot + "/Fixtures/imaging/files/big.png")) },
                400, "messages[0].content[0].image_url.url"
            ),
            (
                "a JPEG with 2000 scans",
                {
                    try post(withImage(repositoryRoot + "/Fixtures/robustness/scans-bomb.jpg", kind: "jpeg"))
                }, 400, "messages[0].content[0].image_url.url"
            ),
            (
                "an http URL", { try post(imageURL("http://example.com/cat.png")) }, 400,
                "messages[0].content[0].image_url.url"
            ),
            (
                "a file outside --media-root", { try post(imageURL("file://" + tinyRandom + "/example.png")) }, 400,
                "messages[0].content[0].image_url.url"
            ),
            (
                "a file reached with ..", { try post(imageURL("file://" + tinyEagle + "/../tiny-random/example.png")) },
                400, "messages[0].content[0].image_url.url"
            ),
            (
                "a missing file", { try post(imageURL("file://" + tinyEagle + "/nothing.png")) }, 400,
                "messages[0].content[0].image_url.url"
            ),
            (
                "an image in an assistant message",
                {
                    try post(
                        "{\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AA==\"}}]}]}"
                    )
                }, 400, "messages[0].content[0]"
            ),
            ("a body over --max-body-bytes", { try post(Array(repeating: 32, count: 700_000)) }, 413, nil),
            (
                "a declared body over --max-body-bytes",
                {
                    try c.sendRaw(
                        Array(
                            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Length: 100000000\r\n\r\n"
                                .utf8))
                }, 413, nil
            ),
            ("max_tokens negative", { try post(params("\"max_tokens\":-1")) }, 400, "max_tokens"),
            ("max_tokens zero", { try post(params("\"max_completion_tokens\":0")) }, 400, "max_completion_tokens"),
            ("max_tokens beyond the context", { try post(params("\"max_tokens\":5000")) }, 400, "max_tokens"),
            (
                "max_tokens beyond what the prompt leaves", { try post(params("\"max_tokens\":1000")) }, 400,
                "max_tokens"
            ),
            ("max_tokens of the wrong type", { try post(params("\"max_tokens\":\"10\"")) }, 400, "max_tokens"),
            ("max_tokens fractional", { try post(params("\"max_tokens\":2.5")) }, 400, "max_tokens"),
            ("temperature of the wrong type", { try post(params("\"temperature\":true")) }, 400, "temperature"),
            ("temperature out of range", { try post(params("\"temperature\":-0.5")) }, 400, "temperature"),
            ("top_p out of range", { try post(params("\"top_p\":0")) }, 400, "top_p"),
            ("seed negative", { try post(params("\"seed\":-1")) }, 400, "seed"),
            ("stream of the wrong type", { try post(params("\"stream\":\"yes\"")) }, 400, "stream"),
            ("too many stop strings", { try post(params("\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]")) }, 400, "stop"),
            ("n above one", { try post(params("\"n\":2")) }, 400, "n"),
            (
                "text holding <IMG_CONTEXT> of its own",
                { try post("{\"messages\":[{\"role\":\"user\",\"content\":\"<IMG_CONTEXT> What is it?\"}]}") },
                400, "messages"
            ),
            (
                "the same, streamed: still a status, not a broken stream",
                {
                    try post(
                        "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"<IMG_CONTEXT> What is it?\"}]}"
                    )
                }, 400, "messages"
            ),
            (
                "a prompt longer than the context",
                {
                    try post("{\"messages\":[{\"role\":\"user\",\"content\":\(jsonQuoted(longPrompt))}]}")
                }, 400, "messages"
            ),
            (
                "a wrong API key",
                {
                    try post(Array(params("\"max_tokens\":2").utf8), headers: [("Authorization", "Bearer nope")])
                }, 401, nil
            ),
            ("a missing API key", { try post(Array(params("\"max_tokens\":2").utf8), headers: []) }, 401, nil),
            ("models without the key", { try c.send("GET", "/v1/models") }, 401, nil),
            ("an unknown path", { try c.send("GET", "/v1/completions", headers: auth) }, 404, nil),
            ("the wrong method", { try c.send("GET", "/v1/chat/completions", headers: auth) }, 405, nil),
            ("not HTTP at all", { try c.sendRaw(Array("HELLO\r\n\r\n".utf8)) }, 400, nil)
        ]
        for (what, send, status, param) in cases {
            let r = try send()
            #expect(r.status == status, "\(what): \(r.status) \(r.text)")
            if what == "not HTTP at all" { continue } // the HTTP parser's own 400, no body
            let o = object(r.text)?["error"] as? [String: Any]
            #expect(o?["message"] is String && o?["type"] is String, "\(what): \(r.text)")
            #expect(o.map { $0.keys.sorted() } == ["code", "message", "param", "type"], "\(what): \(r.text)")
            if let param { #expect(o?["param"] as? String == param, "\(what): \(r.text)") }
            #expect(r.header("content-type") == "application/json", "\(what)")
        }
        let inside = try post(imageURL("file://" + tinyEagle + "/demo.png").dropLast(1) + ",\"max_tokens\":32}")
        #expect(object(inside.text).flatMap(answerText) == demo.expected, "\(inside.text)")
        let after = try post(chatBody(demo.question, image: tinyEagle + "/demo.png"))
        #expect(after.status == 200)
        #expect(object(after.text).flatMap(answerText) == demo.expected, "\(after.text)")
        #expect(server.process.isRunning)
        #expect(server.stop() == 0)
    }

    /// The stream on the wire: `text/event-stream`, chunked; a role chunk, content chunks, a finish chunk, `[DONE]`.
    @Test func streamIsServerSentEventsEndingWithDone() throws {
        let server = try EagletServer(["--model", tinyEagle])
        let r = try LoopbackClient(port: server.port).send(
            "POST", "/v1/chat/completions", body: chatBody(demo.question, image: tinyEagle + "/demo.png", stream: true))
        #expect(r.status == 200)
        #expect(r.header("content-type") == "text/event-stream")
        #expect(r.header("transfer-encoding") == "chunked")
        let events = r.events
        #expect(events.last == "[DONE]")
        let chunks = events.dropLast().compactMap(object)
        #expect(chunks.count == events.count - 1)
        let choices = chunks.map { ($0["choices"] as? [[String: Any]])?.first ?? [:] }
        let deltas = choices.map { $0["delta"] as? [String: Any] ?? [:] }
        #expect(deltas.first?["role"] as? String == "assistant")
        #expect(choices.dropLast().allSatisfy { $0["finish_reason"] is NSNull })
        #expect(choices.last?["finish_reason"] as? String == "stop")
        #expect(deltas.compactMap { $0["content"] as? String }.joined() == demo.expected)
        #expect(Set(chunks.compactMap { $0["id"] as? String }).count == 1)
        #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
        // A stop string ends the answer without it, streamed or not.
        let cut = try LoopbackClient(port: server.port).send(
            "POST", "/v1/chat/completions",
            body: chatBody(demo.question, image: tinyEagle + "/demo.png", stream: true, extra: ",\"stop\":[\"three\"]"))
        let pieces = cut.events.dropLast().compactMap(object).compactMap {
            (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String
        }
        #expect(pieces.joined() == "There are ")
        let whole = try LoopbackClient(port: server.port).send(
            "POST", "/v1/chat/completions",
            body: chatBody(demo.question, image: tinyEagle + "/demo.png", extra: ",\"stop\":\"three\""))
        #expect(object(whole.text).flatMap(answerText) == "There are ")
        // One kept-alive connection carries several requests, as the openai clients send them.
        let connection = LoopbackConnection(LoopbackClient(port: server.port))
        for stream in [false, true, false] {
            let r = try connection.send(
                "POST", "/v1/chat/completions",
                body: chatBody(demo.question, image: tinyEagle + "/demo.png", stream: stream))
            #expect(r.status == 200 && r.header("connection") == nil)
        }
        #expect(server.stop() == 0)
    }

    @Test func pageModelsAndHealth() throws {
        let server = try EagletServer(["--model", tinyEagle])
        let page = try LoopbackClient(port: server.port).send("GET", "/")
        #expect(page.status == 200 && page.header("content-type") == "text/html; charset=utf-8")
        for piece in ["/v1/chat/completions", "getReader()", "data: [DONE]", "type=\"file\""] {
            #expect(page.text.contains(piece), "\(piece)")
        }
        let health = try LoopbackClient(port: server.port).send("GET", "/health")
        #expect(health.status == 200 && health.text == "{\"status\":\"ok\",\"running\":0,\"waiting\":0}")
        let models = object(try LoopbackClient(port: server.port).send("GET", "/v1/models").text)
        #expect((models?["data"] as? [[String: Any]])?.first?["id"] as? String == "tiny-eagle")
        #expect(server.stop() == 0)
    }

    /// A video file under --media-root goes through the same frame sampling and ADS as `generate --video`.
    @Test func videoGivesTheTextOfGenerateVideo() throws {
        let videos = repositoryRoot + "/Fixtures/test-videos"
        let server = try EagletServer(["--model", tinyRandom, "--media-root", videos])
        let body =
            "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"video_url\",\"video_url\":{\"url\":\"file://\(videos)/h264.mp4\"}},{\"type\":\"text\",\"text\":\"What happens?\"}]}],\"max_tokens\":4}"
        let r = try LoopbackClient(port: server.port).send("POST", "/v1/chat/completions", body: Array(body.utf8))
        let want = try generateText(
            model: tinyRandom, image: nil, question: "What happens?", maxNewTokens: 4,
            extra: ["--video", videos + "/h264.mp4"])
        #expect(r.status == 200, "\(r.text)")
        #expect(object(r.text).flatMap(answerText) == want.text)
        let usage = object(r.text)?["usage"] as? [String: Any]
        #expect(usage?["prompt_tokens"] as? Int == want.promptTokens)
        let garbage = body.replacingOccurrences(of: "h264.mp4", with: "garbage.mp4")
        let bad = try LoopbackClient(port: server.port).send("POST", "/v1/chat/completions", body: Array(garbage.utf8))
        #expect(bad.status == 400 && bad.text.contains("video_url.url"), "\(bad.text)")
        #expect(server.stop() == 0)
    }

    /// One generation at a time: with one running and --max-queue 1 waiting, the next is 429. A client that goes away
    /// (streaming or not) stops its generation, and the one waiting runs at once.
    @Test func fullQueueIs429AndClientsThatLeaveAreCancelled() throws {
        let server = try EagletServer(["--model", tinyRandom, "--max-queue", "1", "--decode-delay-ms", "40"])
        let c = LoopbackClient(port: server.port)
        let long = chatBody("Tell me a story.", maxTokens: 200, stream: true, extra: ",\"stop\":[]")
        // A: streams 200 tokens at 40 ms each (8 s) — unless its client leaves after the first piece of text.
        let aStarted = DispatchSemaphore(value: 0), bDone = DispatchSemaphore(value: 0)
        let results = Results()
        DispatchQueue.global().async {
            var signalled = false
            _ = try? c.send("POST", "/v1/chat/completions", body: long) { bytes in
                if !signalled, String(decoding: bytes, as: UTF8.self).contains("\"content\":\"") {
                    signalled = true
                    aStarted.signal()
                }
                return results.keepA
            }
        }
        #expect(aStarted.wait(timeout: .now() + 30) == .success)
        // B waits behind A.
        DispatchQueue.global().async {
            let t0 = Date()
            let r = try? c.send("POST", "/v1/chat/completions", body: chatBody("Hi", maxTokens: 2))
            results.set(b: r?.status ?? 0, seconds: Date().timeIntervalSince(t0))
            bDone.signal()
        }
        let start = Date()
        while !server.log.isEmpty && Date().timeIntervalSince(start) < 10 {
            if let h = try? c.send("GET", "/health"), h.text.contains("\"waiting\":1") { break }
            usleep(10_000)
        }
        // C finds the line full.
        let full = try c.send("POST", "/v1/chat/completions", body: chatBody("Hi", maxTokens: 2))
        #expect(full.status == 429, "\(full.text)")
        #expect((object(full.text)?["error"] as? [String: Any])?["code"] as? String == "queue_full")
        // A's client leaves: its generation stops, B runs.
        results.keepA = false
        #expect(bDone.wait(timeout: .now() + 30) == .success)
        #expect(results.b.status == 200)
        #expect(results.b.seconds < 4, "B waited \(results.b.seconds) s: A's generation was not cancelled")
        #expect(server.log.contains("cancelled"), "\(server.log)")
        // A client that leaves before a non-streamed answer is ready also stops its generation.
        let before = server.log.components(separatedBy: "cancelled").count
        _ = try? LoopbackClient(port: server.port).send(
            "POST", "/v1/chat/completions", body: chatBody("Tell me a story.", maxTokens: 200), timeout: 0.5)
        let t0 = Date()
        while server.log.components(separatedBy: "cancelled").count == before && Date().timeIntervalSince(t0) < 5 {
            usleep(20_000)
        }
        #expect(server.log.components(separatedBy: "cancelled").count == before + 1, "\(server.log)")
        #expect(try c.send("POST", "/v1/chat/completions", body: chatBody("Hi", maxTokens: 2)).status == 200)
        #expect(server.stop() == 0)
    }

    /// SIGTERM: the generation in flight finishes and is delivered in full, a new request is refused, exit 0.
    @Test func sigtermFinishesTheGenerationInFlightThenExitsZero() throws {
        let server = try EagletServer(["--model", tinyRandom, "--decode-delay-ms", "30"])
        let c = LoopbackClient(port: server.port)
        let started = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        let results = Results()
        DispatchQueue.global().async {
            var signalled = false
            let r = try? c.send(
                "POST", "/v1/chat/completions",
                body: chatBody(
                    "Tell me a story.", maxTokens: 30, stream: true,
                    extra: ",\"stream_options\":{\"include_usage\":true}")
            ) { bytes in
                if !signalled, String(decoding: bytes, as: UTF8.self).contains("\"content\":\"") {
                    signalled = true
                    started.signal()
                }
                return true
            }
            results.setStream(r?.events ?? [])
            done.signal()
        }
        #expect(started.wait(timeout: .now() + 30) == .success)
        kill(server.process.processIdentifier, SIGTERM)
        usleep(200_000)
        let refused = try? c.send("POST", "/v1/chat/completions", body: chatBody("Hi", maxTokens: 2), timeout: 5)
        #expect(refused == nil || refused?.status == 503, "a request after SIGTERM: \(refused?.status ?? 0)")
        #expect(done.wait(timeout: .now() + 30) == .success)
        let events = results.stream
        #expect(events.last == "[DONE]")
        let usage = events.dropLast().last.flatMap(object)?["usage"] as? [String: Any]
        #expect(usage?["completion_tokens"] as? Int == 30, "\(events.suffix(3))")
        #expect(server.stop(nil) == 0, "\(server.log)") // the one SIGTERM above: a second would exit at once
        #expect(server.log.contains("SIGTERM"))
    }
}

/// The choice's message content of a chat.completion object.
func answerText(_ o: [String: Any]) -> String? {
    ((o["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
}

/// What the background clients of a test found.
// @unchecked: every field is read and written with `lock` held.
final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var _keepA = true
    private var _b: (status: Int, seconds: Double) = (0, 0)
    private var _stream: [String] = []
    var keepA: Bool {
        get { lock.withLock { _keepA } }
        set { lock.withLock { _keepA = newValue } }
    }
    var b: (status: Int, seconds: Double) { lock.withLock { _b } }
    func set(b status: Int, seconds: Double) { lock.withLock { _b = (status, seconds) } }
    var stream: [String] { lock.withLock { _stream } }
    func setStream(_ e: [String]) { lock.withLock { _stream = e } }
}

/// Stop strings cut the answer where one first appears, also across pieces; without them text passes at once.
@Test func stopStringsCutAcrossPieces() {
    var s = StopStrings(["three", "\n\n"])
    var out = ""
    var stopped = false
    for piece in ["There ", "are th", "r", "ee shapes."] where !stopped {
        let r = s.push(piece)
        out += r.text
        stopped = r.stopped
    }
    #expect(out == "There are " && stopped)
    var none = StopStrings([])
    #expect(none.push("th").text == "th")
    var tail = StopStrings(["xyz"])
    #expect(tail.push("abcx").text == "abc")
    #expect(tail.push("y").text == "")
    #expect(tail.finish() == "xy")
}

/// The request parser alone: defaults are `eaglet generate`'s; parts keep their order; fields of the wrong type name
/// themselves.
@Test func chatRequestParsesAndNamesBadFields() throws {
    let r = try ChatRequest.parse(
        Array(
            "{\"messages\":[{\"role\":\"developer\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw==\"}},{\"type\":\"text\",\"text\":\"b\"}]}],\"stop\":\"x\"}"
                .utf8), mediaRoot: nil)
    #expect(r.messages.map(\.role) == ["system", "user"])
    #expect(r.messages[1].text == "a\nb" && r.messages[1].images.count == 1)
    #expect(r.sampling.temperature == 0 && r.sampling.seed == 0 && r.maxTokens == nil && r.stop == ["x"] && !r.stream)
    #expect(throws: ServeError.invalid("'top_k' must be an integer", param: "top_k")) {
        try ChatRequest.parse(
            Array("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"top_k\":1.5}".utf8), mediaRoot: nil)
    }
}
