// What the server answers instead of a completion: an HTTP status and OpenAI's error object,
// `{"error": {"message", "type", "param", "code"}}`, which the `openai` clients turn into their typed exceptions
// (BadRequestError for 400, AuthenticationError for 401, RateLimitError for 429, …). Every refusal of the server —
// a malformed body, a bad parameter, an image that does not decode, a prompt longer than the context, a full
// queue — is one of these, built where the problem is found; nothing a client sends may crash or hang the server.
import _Essentials

/// A request the server refuses, with what the client can do about it.
public struct ServeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The HTTP status (400, 401, 404, 405, 413, 429, 500, 503).
    public var status: Int
    /// OpenAI's error type: "invalid_request_error", "authentication_error", "rate_limit_error", …
    public var type: String
    /// What was wrong and what to do, in one line.
    public var message: String
    /// The request field at fault, as a path such as `messages[0].content[1].image_url.url`.
    public var param: String?
    /// A stable machine-readable code ("context_length_exceeded", "queue_full", …).
    public var code: String?

    public init(status: Int, type: String, message: String, param: String? = nil, code: String? = nil) {
        self.status = status; self.type = type; self.message = message; self.param = param; self.code = code
    }

    public var description: String { "\(status) \(type): \(message)" + (param.map { " (param \($0))" } ?? "") }

    /// The response body: `{"error":{"message":…,"type":…,"param":…,"code":…}}`.
    public var json: String {
        "{\"error\":{\"message\":\(JSON.quoted(message)),\"type\":\(JSON.quoted(type)),"
            + "\"param\":\(param.map(JSON.quoted) ?? "null"),\"code\":\(code.map(JSON.quoted) ?? "null")}}"
    }

    /// 400: the request is malformed or a value is out of its range.
    public static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> ServeError {
        ServeError(status: 400, type: "invalid_request_error", message: message, param: param, code: code)
    }

    /// 401: --api-key is set and the request's `Authorization: Bearer …` is missing or different.
    public static let unauthorized = ServeError(
        status: 401, type: "authentication_error",
        message: "missing or wrong API key: send the server's --api-key as 'Authorization: Bearer KEY'",
        code: "invalid_api_key")

    /// 413: the body is longer than --max-body-bytes.
    public static func bodyTooLarge(limit: Int) -> ServeError {
        ServeError(
            status: 413, type: "invalid_request_error",
            message:
                "the request body is over the server's limit of \(limit) bytes (--max-body-bytes); send smaller images",
            code: "request_too_large")
    }

    /// 429: --max-queue requests already wait for the model.
    public static func queueFull(waiting: Int) -> ServeError {
        ServeError(
            status: 429, type: "rate_limit_error",
            message: "the server is busy: \(waiting) requests already wait for the model (--max-queue); retry later",
            code: "queue_full")
    }

    /// 503: SIGTERM or SIGINT arrived; the server finishes what it runs and takes nothing new.
    public static let shuttingDown = ServeError(
        status: 503, type: "service_unavailable", message: "the server is shutting down and takes no new requests",
        code: "shutting_down")

    /// 404: no such path.
    public static func notFound(_ path: String) -> ServeError {
        ServeError(
            status: 404, type: "not_found_error",
            message:
                "no route \(path); the server answers POST /v1/chat/completions, GET /v1/models, GET /health, GET /",
            code: "not_found")
    }

    /// 405: the path exists with another method.
    public static func methodNotAllowed(_ method: String, _ path: String, allowed: String) -> ServeError {
        ServeError(
            status: 405, type: "invalid_request_error", message: "\(path) takes \(allowed), not \(method)",
            code: "method_not_allowed")
    }

    /// 500: something failed inside the server (a bug, or the machine ran out of something).
    public static func `internal`(_ message: String) -> ServeError {
        ServeError(status: 500, type: "server_error", message: message, code: "internal_error")
    }
}
