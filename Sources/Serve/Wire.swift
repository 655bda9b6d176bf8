// What goes back on the wire, as OpenAI's API writes it.
//
// Without streaming, one JSON object:
//   {"id":"chatcmpl-…","object":"chat.completion","created":1767000000,"model":"tiny-eagle",
//    "choices":[{"index":0,"message":{"role":"assistant","content":"There are three shapes."},
//                "logprobs":null,"finish_reason":"stop"}],
//    "usage":{"prompt_tokens":150,"completion_tokens":7,"total_tokens":157}}
// With `"stream": true`, server-sent events (`text/event-stream`): one `data: {…}\n\n` line pair per chunk, the
// first chunk's delta carrying the role, each later one a piece of content, the last one an empty delta and the
// finish_reason (then, with stream_options.include_usage, a chunk with no choices and the usage), and at the end
// `data: [DONE]\n\n`. Chunked transfer encoding carries the events as they are written.
import Foundation
import _Essentials

/// The JSON of responses and stream chunks.
public enum Wire {
    /// The identity every chunk of one response repeats.
    public struct Identity: Sendable {
        public var id: String
        public var created: Int
        public var model: String
        public init(id: String, created: Int, model: String) {
            self.id = id; self.created = created; self.model = model
        }

        /// A fresh `chatcmpl-` id (24 random hex digits) and the current Unix time.
        public static func new(model: String) -> Identity {
            var g = SystemRandomNumberGenerator()
            let hex = (0..<3).map { _ in String(g.next() as UInt32, radix: 16) }.map {
                String(repeating: "0", count: 8 - $0.count) + $0
            }
            return Identity(id: "chatcmpl-" + hex.joined(), created: unixTime(), model: model)
        }

        var head: String { "\"id\":\(JSON.quoted(id)),\"created\":\(created),\"model\":\(JSON.quoted(model))" }
    }

    static func usage(_ c: Completion) -> String {
        "{\"prompt_tokens\":\(c.promptTokens),\"completion_tokens\":\(c.completionTokens),"
            + "\"total_tokens\":\(c.promptTokens + c.completionTokens)}"
    }

    /// The whole answer: `object` "chat.completion".
    public static func completion(_ who: Identity, text: String, _ c: Completion) -> String {
        "{\(who.head),\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
            + "\"content\":\(JSON.quoted(text))},\"logprobs\":null,\"finish_reason\":\(JSON.quoted(c.finishReason))}],"
            + "\"usage\":\(usage(c))}"
    }

    /// One `chat.completion.chunk`: `role` in the first, `content` in the others, `finishReason` in the last.
    public static func chunk(_ who: Identity, role: Bool = false, content: String? = nil, finishReason: String? = nil)
        -> String
    {
        var delta = [String]()
        if role { delta.append("\"role\":\"assistant\"") }
        if let content { delta.append("\"content\":\(JSON.quoted(content))") }
        return "{\(who.head),\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{"
            + delta.joined(separator: ",") + "},\"logprobs\":null,\"finish_reason\":"
            + (finishReason.map(JSON.quoted) ?? "null") + "}]}"
    }

    /// The usage chunk of `stream_options.include_usage`: no choices.
    public static func usageChunk(_ who: Identity, _ c: Completion) -> String {
        "{\(who.head),\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":\(usage(c))}"
    }

    /// One server-sent event carrying `data`.
    public static func event(_ data: String) -> String { "data: " + data + "\n\n" }

    /// The stream's last event.
    public static let done = "data: [DONE]\n\n"

    /// `GET /v1/models`: the one model served.
    public static func models(_ name: String, created: Int) -> String {
        "{\"object\":\"list\",\"data\":[{\"id\":\(JSON.quoted(name)),\"object\":\"model\",\"created\":\(created),"
            + "\"owned_by\":\"eaglet\"}]}"
    }
}

/// Seconds since 1970 (the `created` of OpenAI's objects).
func unixTime() -> Int { Int(Date().timeIntervalSince1970) }
