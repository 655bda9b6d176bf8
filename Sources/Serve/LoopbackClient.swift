// The other end of the wire, for the tests, chapter 17 and `eaglet-bench serve`: a minimal HTTP/1.1 client over a TCP
// socket on this machine, written with the C socket calls so that every byte sent and received is in view. One request
// per connection (`Connection: close`), or several on one kept-alive `LoopbackConnection`, as the openai clients keep
// theirs. It reads a response as it arrives — status line, headers, then the body, undoing chunked transfer encoding —
// and hands the body's bytes to a callback as they come, which may stop reading (closing the connection: a client that
// goes away). What it is not: TLS, redirects, pipelining, a general client.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 exchange with a server on this machine.
public struct LoopbackClient: Sendable {
    public let host: String
    public let port: Int

    public init(host: String = "127.0.0.1", port: Int) { self.host = host; self.port = port }

    /// Why an exchange failed.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// A response: status, headers (names lower-cased), the body (de-chunked), and every byte as received.
    public struct Reply: Sendable {
        public var status = 0
        public var headers: [(name: String, value: String)] = []
        public var body: [UInt8] = []
        /// The bytes on the wire: status line, headers and the body as sent (chunk sizes included).
        public var raw: [UInt8] = []
        public var text: String { String(decoding: body, as: UTF8.self) }
        public func header(_ name: String) -> String? { headers.first { $0.name == name.lowercased() }?.value }
        /// The body as server-sent events: the `data:` payloads, in order.
        public var events: [String] { LoopbackClient.events(in: text) }
    }

    /// Sends `method path` with `headers` and `body`; `onBody` sees the body's bytes as they arrive and returns false
    /// to stop reading and close the connection. Gives up after `timeout` seconds without data.
    public func send(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8] = [], timeout: Double = 120,
        onBody: ([UInt8]) -> Bool = { _ in true }
    ) throws -> Reply {
        try sendRaw(
            LoopbackClient.request(method, path, host: "\(host):\(port)", headers: headers, body: body, close: true),
            timeout: timeout, onBody: onBody)
    }

    /// Sends `bytes` as they are (for requests that are not well-formed HTTP) and reads the response.
    public func sendRaw(_ bytes: [UInt8], timeout: Double = 120, onBody: ([UInt8]) -> Bool = { _ in true }) throws
        -> Reply
    {
        let fd = try connect(timeout: timeout)
        defer { close(fd) }
        return try LoopbackClient.exchange(fd, bytes, timeout: timeout, onBody: onBody).reply
    }

    /// The bytes of a request: request line, Host, `Connection: close` when `close`, `headers`, Content-Length, body.
    static func request(
        _ method: String, _ path: String, host: String, headers: [(String, String)], body: [UInt8], close: Bool
    ) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n" + (close ? "Connection: close\r\n" : "")
        for (n, v) in headers { head += "\(n): \(v)\r\n" }
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        return Array((head + "\r\n").utf8) + body
    }

    /// Writes `bytes` to the connected socket `fd` and reads one response; `whole`: it was read to its end (the
    /// connection can carry another request).
    static func exchange(_ fd: Int32, _ bytes: [UInt8], timeout: Double, onBody: ([UInt8]) -> Bool) throws -> (
        reply: Reply, whole: Bool
    ) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            // The server may answer and close before reading everything (a 413): read what it said.
            if n <= 0 { break }
            sent += n
        }
        var reader = ResponseReader()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !reader.complete {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { throw Failure(description: "no data for \(timeout) s") }
                if errno == ECONNRESET, reader.reply.status != 0 { break }
                throw Failure(description: "recv: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            let fresh = try reader.feed(Array(buffer[0..<n]))
            if !fresh.isEmpty && !onBody(fresh) { break }
        }
        guard reader.reply.status != 0 else {
            throw Failure(description: "the connection closed before a status line (\(reader.reply.raw.count) bytes)")
        }
        return (reader.reply, reader.complete)
    }

    /// A connected TCP socket with `timeout` on reads.
    func connect(timeout: Double) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(fd)
            throw Failure(description: "\(host) is not an IPv4 address")
        }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard status == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "cannot connect to \(host):\(port): \(reason)")
        }
        return fd
    }

    /// The `data:` payloads of server-sent events in `text` (events end at a blank line).
    public static func events(in text: String) -> [String] {
        text.components(separatedBy: "\n\n").compactMap { event in
            let data = event.split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { $0.dropFirst(6) }
            return data.isEmpty ? nil : data.joined(separator: "\n")
        }
    }
}

/// One connection kept open across requests (HTTP/1.1 keep-alive): the way the openai clients and browsers talk to a
/// server, without a TCP handshake per request. Reopened when the server closed it.
public final class LoopbackConnection {
    public let client: LoopbackClient
    public let timeout: Double
    private var fd: Int32 = -1

    public init(_ client: LoopbackClient, timeout: Double = 120) {
        self.client = client
        self.timeout = timeout
    }

    deinit { if fd >= 0 { close(fd) } }

    /// As `LoopbackClient.send`, on this connection.
    public func send(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8] = [],
        onBody: ([UInt8]) -> Bool = { _ in true }
    ) throws -> LoopbackClient.Reply {
        if fd < 0 { fd = try client.connect(timeout: timeout) }
        let bytes = LoopbackClient.request(
            method, path, host: "\(client.host):\(client.port)", headers: headers, body: body, close: false)
        let (reply, whole) = try LoopbackClient.exchange(fd, bytes, timeout: timeout, onBody: onBody)
        if !whole || reply.header("connection")?.lowercased() == "close" {
            close(fd)
            fd = -1
        }
        return reply
    }
}

/// Parses a response incrementally: head, then the body by Content-Length, chunked encoding, or up to the close.
struct ResponseReader {
    var reply = LoopbackClient.Reply()
    var complete = false
    private var pending: [UInt8] = []
    private var headDone = false
    private var chunked = false
    private var remaining: Int? // body bytes still expected (Content-Length, or the current chunk)

    /// Adds received bytes; returns the body bytes they completed.
    mutating func feed(_ bytes: [UInt8]) throws -> [UInt8] {
        reply.raw += bytes
        pending += bytes
        var out = [UInt8]()
        if !headDone {
            guard let end = find([13, 10, 13, 10], in: pending) else { return [] }
            try parseHead(String(decoding: pending[..<end], as: UTF8.self))
            pending.removeFirst(end + 4)
            headDone = true
        }
        while !complete {
            if chunked {
                if remaining == nil || remaining == 0 {
                    if remaining == 0 { // the CRLF after a chunk's data
                        guard pending.count >= 2 else { break }
                        pending.removeFirst(2)
                        remaining = nil
                    }
                    guard let eol = find([13, 10], in: pending) else { break }
                    let sizeText = String(decoding: pending[..<eol], as: UTF8.self).split(separator: ";").first ?? ""
                    guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                        throw LoopbackClient.Failure(description: "bad chunk size '\(sizeText)'")
                    }
                    pending.removeFirst(eol + 2)
                    if size == 0 {
                        complete = true
                        break
                    }
                    remaining = size
                }
                let take = min(remaining ?? 0, pending.count)
                if take == 0 { break }
                out += pending[..<take]
                pending.removeFirst(take)
                remaining = (remaining ?? 0) - take
            } else {
                out += pending
                pending.removeAll()
                if let r = remaining {
                    remaining = r - out.count
                    if r - out.count <= 0 { complete = true }
                }
                break
            }
        }
        reply.body += out
        return out
    }

    mutating func parseHead(_ head: String) throws {
        let lines = head.components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let code = Int(statusParts[1]) else {
            throw LoopbackClient.Failure(description: "not an HTTP status line: \(lines[0])")
        }
        reply.status = code
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            reply.headers.append((name, value))
        }
        chunked = reply.header("transfer-encoding")?.lowercased() == "chunked"
        if !chunked, let n = reply.header("content-length").flatMap({ Int($0) }) {
            remaining = n
            if n == 0 { complete = true }
        }
    }

    func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }
}
