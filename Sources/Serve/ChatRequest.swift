// The body of `POST /v1/chat/completions`, read and checked before the request may wait for the model.
//
// What is read (OpenAI's chat completions API, the fields a vision-language model can honour):
//   messages            [{role, content}], role system | developer (= system) | user | assistant; content a string
//                       or parts {"type": "text", "text"}, {"type": "image_url", "image_url": {"url"}},
//                       {"type": "video_url", "video_url": {"url"}}; images in user messages only
//   max_completion_tokens / max_tokens   ≥ 1 (default: what the context leaves after the prompt)
//   temperature [0, 2], top_p (0, 1], seed ≥ 0, stop (a string or up to 4), stream, stream_options.include_usage
//   top_k, repetition_penalty   vLLM's extensions, as `eaglet generate --top-k --repetition-penalty`
// Omitted parameters take `eaglet generate`'s defaults (greedy, seed 0), so one request gives the same text as the
// same question on the command line. A message's images and video come before its text, in their order, as
// `eaglet generate --image … --prompt` places them; its text parts are joined with newlines.
// URLs: `data:image/png;base64,…` and `data:image/jpeg;base64,…`; `file://` paths only under --media-root (after
// `..` and symlinks are resolved); nothing is fetched from the network.
// What it is not: tools, logprobs, n > 1, audio, response_format — refused by name or ignored when harmless.
import Eagle
import Foundation
import _Essentials

/// A chat completion request whose every field has been checked.
public struct ChatRequest: Sendable {
    /// One message: its role ("system", "user" or "assistant") and its parts in order.
    public struct Message: Sendable, Equatable {
        public var role: String
        public var parts: [Part]
        /// The text parts, joined with newlines.
        public var text: String {
            parts.compactMap { if case let .text(t) = $0 { t } else { nil } }.joined(separator: "\n")
        }
        /// The images, in order.
        public var images: [ImageSource] { parts.compactMap { if case let .image(s) = $0 { s } else { nil } } }
        /// The video (a file under --media-root) and the field that named it, if the message has one.
        public var video: (path: String, param: String)? {
            for p in parts { if case let .video(path, param) = p { return (path, param) } }
            return nil
        }
    }

    /// A piece of a message's content.
    public enum Part: Sendable, Equatable {
        case text(String)
        case image(ImageSource)
        /// A video file (under --media-root), with the request field that named it.
        case video(path: String, param: String)
    }

    /// Where an image's bytes are, with the request field that named it (for errors found when it is decoded).
    public enum ImageSource: Sendable, Equatable {
        case bytes([UInt8], param: String)
        case file(path: String, param: String)
    }

    /// The `model` field as sent (not checked against the served checkpoint's name).
    public var model: String?
    public var messages: [Message]
    /// nil: what the context leaves after the prompt.
    public var maxTokens: Int?
    /// The field that gave `maxTokens`: "max_completion_tokens" or "max_tokens" (for errors about it).
    public var maxTokensField = "max_tokens"
    public var sampling: SamplingParameters
    /// Strings that end the answer (not included in it).
    public var stop: [String]
    public var stream: Bool
    /// `stream_options.include_usage`: one more chunk before `[DONE]`, with no choices and the token counts.
    public var includeUsage: Bool

    /// The largest `temperature` OpenAI's API accepts.
    public static let maxTemperature: Float = 2
    /// At most this many stop strings (OpenAI's limit).
    public static let maxStopStrings = 4

    /// Reads and checks a request body. `mediaRoot`: the folder `file://` URLs must lie in (nil: they are refused);
    /// give it resolved (`ChatRequest.resolvedFolder`).
    public static func parse(_ body: [UInt8], mediaRoot: String?) throws(ServeError) -> ChatRequest {
        let tree: Any
        do { tree = try JSON.parse(body) } catch {
            throw .invalid("the body is not JSON: \(error)", code: "invalid_json")
        }
        guard let o = tree as? [String: Any] else {
            throw .invalid("the body must be a JSON object with a 'messages' array", code: "invalid_json")
        }
        let fields = Fields(object: o, path: "")
        var r = ChatRequest(
            model: try fields.string("model"), messages: [], maxTokens: nil, sampling: SamplingParameters(), stop: [],
            stream: try fields.bool("stream") ?? false, includeUsage: false)

        guard let rawMessages = o["messages"], !(rawMessages is JSONNull) else {
            throw .invalid("'messages' is missing: give an array of {role, content} messages", param: "messages")
        }
        guard let list = rawMessages as? [Any] else {
            throw .invalid("'messages' must be an array of {role, content} messages", param: "messages")
        }
        guard !list.isEmpty else { throw .invalid("'messages' is empty: give at least one message", param: "messages") }
        for (i, m) in list.enumerated() {
            r.messages.append(try message(m, path: "messages[\(i)]", mediaRoot: mediaRoot))
        }
        // A video comes with one question, as in `eaglet generate --video`: ADS fits that one prompt to the context.
        if r.messages.contains(where: { $0.video != nil }) {
            let single = r.messages.count == 1 || (r.messages.count == 2 && r.messages[0].role == "system")
            let videos = r.messages.flatMap(\.parts).filter { if case .video = $0 { true } else { false } }
            guard single, r.messages.last?.role == "user", videos.count == 1 else {
                throw .invalid(
                    "a video_url part goes in a conversation of one user message (with one video) after an optional system message",
                    param: "messages")
            }
        }

        // Lengths and sampling, with eaglet generate's defaults.
        let completion = try fields.int("max_completion_tokens"), legacy = try fields.int("max_tokens")
        for (name, v) in [("max_completion_tokens", completion), ("max_tokens", legacy)] {
            if let v, v < 1 { throw .invalid("'\(name)' is \(v); it must be at least 1", param: name) }
        }
        r.maxTokens = completion ?? legacy
        if completion != nil { r.maxTokensField = "max_completion_tokens" }
        if let t = try fields.number("temperature") {
            guard t >= 0 && t <= Double(maxTemperature) else {
                throw .invalid("'temperature' is \(t); it must be in [0, 2] (0: greedy)", param: "temperature")
            }
            r.sampling.temperature = Float(t)
        }
        if let p = try fields.number("top_p") {
            guard p > 0 && p <= 1 else { throw .invalid("'top_p' is \(p); it must be in (0, 1]", param: "top_p") }
            r.sampling.topP = Float(p)
        }
        if let k = try fields.int("top_k") {
            guard k >= -1 else { throw .invalid("'top_k' is \(k); it must be ≥ 0 (0 or -1: off)", param: "top_k") }
            r.sampling.topK = max(k, 0)
        }
        if let p = try fields.number("repetition_penalty") {
            guard p > 0 && p.isFinite && p < 1e6 else {
                throw .invalid("'repetition_penalty' is \(p); it must be > 0 (1: off)", param: "repetition_penalty")
            }
            r.sampling.repetitionPenalty = Float(p)
        }
        if let s = try fields.int("seed") {
            guard s >= 0 else { throw .invalid("'seed' is \(s); it must be ≥ 0", param: "seed") }
            r.sampling.seed = UInt64(s)
        }
        if let n = try fields.int("n"), n != 1 {
            throw .invalid("'n' is \(n); this server makes one choice per request", param: "n")
        }
        if try fields.bool("logprobs") == true {
            throw .invalid("'logprobs' is not supported by this server", param: "logprobs")
        }
        if let tools = o["tools"] as? [Any], !tools.isEmpty {
            throw .invalid("'tools' is not supported by this server", param: "tools")
        }
        r.stop = try stopStrings(o["stop"])
        if let options = o["stream_options"], !(options is JSONNull) {
            guard let so = options as? [String: Any] else {
                throw .invalid("'stream_options' must be an object", param: "stream_options")
            }
            r.includeUsage = try Fields(object: so, path: "stream_options.").bool("include_usage") ?? false
        }
        return r
    }

    /// `folder` made absolute, `..` and symlinks resolved: the form `parse` compares file paths with.
    public static func resolvedFolder(_ folder: String) -> String {
        URL(fileURLWithPath: folder).standardizedFileURL.resolvingSymlinksInPath().path
    }

    static func message(_ m: Any, path: String, mediaRoot: String?) throws(ServeError) -> Message {
        guard let o = m as? [String: Any] else {
            throw .invalid("\(path) must be an object {role, content}", param: path)
        }
        let f = Fields(object: o, path: path + ".")
        guard let role = try f.string("role") else {
            throw .invalid("\(path).role is missing: give system, user or assistant", param: path + ".role")
        }
        let known = ["system": "system", "developer": "system", "user": "user", "assistant": "assistant"]
        guard let mapped = known[role] else {
            throw .invalid(
                "\(path).role '\(role)' is not supported: give system, developer, user or assistant",
                param: path + ".role")
        }
        let content = o["content"]
        if let s = content as? String { return Message(role: mapped, parts: [.text(s)]) }
        guard let items = content as? [Any] else {
            throw .invalid(
                "\(path).content must be a string or an array of content parts", param: path + ".content")
        }
        var parts = [Part]()
        for (k, item) in items.enumerated() {
            let p = "\(path).content[\(k)]"
            let part = try contentPart(item, path: p, mediaRoot: mediaRoot)
            let isText = if case .text = part { true } else { false }
            guard isText || mapped == "user" else {
                throw .invalid("\(p): images and videos go in user messages, not \(role) ones", param: p)
            }
            parts.append(part)
        }
        return Message(role: mapped, parts: parts)
    }

    static func contentPart(_ item: Any, path p: String, mediaRoot: String?) throws(ServeError) -> Part {
        guard let o = item as? [String: Any] else {
            throw .invalid("\(p) must be an object with a 'type'", param: p)
        }
        let f = Fields(object: o, path: p + ".")
        switch try f.string("type") {
        case "text":
            guard let t = try f.string("text") else { throw .invalid("\(p).text is missing", param: p + ".text") }
            return .text(t)
        case "image_url":
            let (url, param) = try urlField(o, key: "image_url", path: p)
            return .image(try imageSource(url, param: param, mediaRoot: mediaRoot))
        case "video_url":
            let (url, param) = try urlField(o, key: "video_url", path: p)
            guard url.hasPrefix("file://") else {
                throw .invalid("\(param): a video is given as a file:// URL under --media-root", param: param)
            }
            return .video(path: try mediaPath(url, param: param, mediaRoot: mediaRoot), param: param)
        case let other?:
            throw .invalid(
                "\(p).type '\(other)' is not supported: give text, image_url or video_url", param: p + ".type")
        case nil:
            throw .invalid("\(p).type is missing: give text, image_url or video_url", param: p + ".type")
        }
    }

    /// `{"image_url": {"url": "…"}}` (OpenAI's form) or `{"image_url": "…"}` (accepted by vLLM).
    static func urlField(_ o: [String: Any], key: String, path p: String) throws(ServeError) -> (String, String) {
        if let s = o[key] as? String { return (s, "\(p).\(key)") }
        guard let inner = o[key] as? [String: Any], let url = inner["url"] as? String else {
            throw .invalid("\(p).\(key).url is missing: give {\"url\": \"data:…\"}", param: "\(p).\(key).url")
        }
        return (url, "\(p).\(key).url")
    }

    /// A `data:` URL's bytes (PNG or JPEG, base64) or a file under the media root.
    static func imageSource(_ url: String, param: String, mediaRoot: String?) throws(ServeError) -> ImageSource {
        if url.hasPrefix("file://") {
            return .file(path: try mediaPath(url, param: param, mediaRoot: mediaRoot), param: param)
        }
        guard url.hasPrefix("data:") else {
            throw .invalid(
                "\(param): give a data:image/png;base64,… or data:image/jpeg;base64,… URL (or file:// under --media-root); the server fetches nothing from the network",
                param: param)
        }
        guard let comma = url.firstIndex(of: ",") else {
            throw .invalid("\(param): a data: URL needs a comma before its data", param: param)
        }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma].lowercased()
        let kinds = ["image/png;base64", "image/jpeg;base64", "image/jpg;base64"]
        guard kinds.contains(header) else {
            throw .invalid(
                "\(param): data:\(header) is not supported: give a PNG or JPEG image as data:image/png;base64,… or data:image/jpeg;base64,…",
                param: param)
        }
        guard let data = Data(base64Encoded: String(url[url.index(after: comma)...])) else {
            throw .invalid("\(param): the data: URL is not valid base64", param: param, code: "invalid_base64")
        }
        guard !data.isEmpty else { throw .invalid("\(param): the image is empty", param: param) }
        return .bytes([UInt8](data), param: param)
    }

    /// The path of a `file://` URL, if it lies under the media root once `..` and symlinks are resolved.
    static func mediaPath(_ url: String, param: String, mediaRoot: String?) throws(ServeError) -> String {
        guard let root = mediaRoot else {
            throw .invalid("\(param): file:// URLs are refused unless the server runs with --media-root", param: param)
        }
        var rest = Substring(url.dropFirst("file://".count))
        if rest.hasPrefix("localhost/") { rest = rest.dropFirst("localhost".count) }
        guard rest.hasPrefix("/"), let decoded = String(rest).removingPercentEncoding, !decoded.contains("\0") else {
            throw .invalid("\(param): expected file:///absolute/path", param: param)
        }
        let resolved = resolvedFolder(decoded)
        guard resolved.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
            throw .invalid("\(param): \(decoded) is outside --media-root", param: param, code: "outside_media_root")
        }
        return resolved
    }

    /// `stop`: null, a string, or an array of up to 4 non-empty strings.
    static func stopStrings(_ v: Any?) throws(ServeError) -> [String] {
        guard let v, !(v is JSONNull) else { return [] }
        let list: [Any] = (v as? String).map { [$0] } ?? (v as? [Any] ?? [0])
        guard v is String || v is [Any], list.count <= maxStopStrings else {
            throw .invalid("'stop' must be a string or an array of at most 4 strings", param: "stop")
        }
        var out = [String]()
        for s in list {
            guard let s = s as? String, !s.isEmpty else {
                throw .invalid("'stop' must hold non-empty strings", param: "stop")
            }
            out.append(s)
        }
        return out
    }
}

/// Typed reads of an object's optional fields; JSON null counts as absent, a value of the wrong type is a 400 naming
/// the field.
struct Fields {
    let object: [String: Any]
    let path: String

    func present(_ key: String) -> Any? {
        guard let v = object[key], !(v is JSONNull) else { return nil }
        return v
    }

    func wrongType(_ key: String, _ expected: String) -> ServeError {
        .invalid("'\(path)\(key)' must be \(expected)", param: path + key)
    }

    func string(_ key: String) throws(ServeError) -> String? {
        guard let v = present(key) else { return nil }
        guard let s = v as? String else { throw wrongType(key, "a string") }
        return s
    }

    func bool(_ key: String) throws(ServeError) -> Bool? {
        guard let v = present(key) else { return nil }
        guard let b = v as? Bool else { throw wrongType(key, "true or false") }
        return b
    }

    func int(_ key: String) throws(ServeError) -> Int? {
        guard let v = present(key) else { return nil }
        guard !(v is Bool), let i = JSON.int(v) else { throw wrongType(key, "an integer") }
        return i
    }

    func number(_ key: String) throws(ServeError) -> Double? {
        guard let v = present(key) else { return nil }
        guard !(v is Bool), let d = JSON.double(v), d.isFinite else { throw wrongType(key, "a number") }
        return d
    }
}
