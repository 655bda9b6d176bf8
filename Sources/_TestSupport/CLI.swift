// Running the built `eaglet` executable from tests, as a user would (the CLI's conventions: one JSON line
// with --json, one stderr line and exit 1 on bad input, never a signal).
import Dispatch
import Foundation

/// The `eaglet` binary of this checkout's build (release first, then debug), or nil when it is not built.
public let eagletBinary: String? = {
    for config in ["release", "debug"] {
        let p = "\(repositoryRoot)/.build/\(config)/eaglet"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}()

/// How one run of `eaglet` ended.
public struct EagletRun {
    public var reason: Process.TerminationReason
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var stderrLines: [Substring] { stderr.split(separator: "\n") }
    /// (exit status, stdout, stderr).
    public var outputs: (Int32, String, String) { (status, stdout, stderr) }
}

/// Runs `eaglet` with `args` (and `environment` added to this process's) and waits for it — at most `timeout`
/// seconds: then it is killed (SIGKILL), so a hang fails the test instead of hanging the suite.
public func runEaglet(_ args: [String], environment: [String: String] = [:], timeout: Double = 120) throws -> EagletRun
{
    let p = Process()
    p.executableURL = URL(fileURLWithPath: eagletBinary ?? "/nonexistent")
    p.arguments = args
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out; p.standardError = err
    try p.run()
    let pid = p.processIdentifier
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [p] in
        if p.isRunning { kill(pid, SIGKILL) }
    }
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return EagletRun(
        reason: p.terminationReason, status: p.terminationStatus,
        stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

/// An `eaglet serve` process on a free loopback port (`--port 0`, the port read from its "listening on" line); its
/// stderr goes to a file that can be read at any time. Killed, if still running, when released.
public final class EagletServer {
    public let process = Process()
    public let logPath: String
    public private(set) var port = 0

    /// Starts `eaglet serve --port 0 arguments…` and waits (at most 60 s) for it to listen.
    public init(_ arguments: [String]) throws {
        logPath = NSTemporaryDirectory() + "eaglet-serve-\(getpid())-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: eagletBinary ?? "/nonexistent")
        process.arguments = ["serve", "--port", "0"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try process.run()
        let start = Date()
        while Date().timeIntervalSince(start) < 60 && process.isRunning {
            if let line = log.split(separator: "\n").first(where: { $0.contains("listening on http://") }),
                let p = line.split(separator: ":").last.flatMap({ Int($0.prefix { $0.isNumber }) })
            {
                port = p
                return
            }
            usleep(10_000)
        }
        stop(SIGKILL)
        throw ServerDidNotStart(log: log)
    }

    /// Why the server did not start: what it wrote on stderr.
    public struct ServerDidNotStart: Error, CustomStringConvertible {
        public let log: String
        public var description: String { "eaglet serve did not start: \(log)" }
    }

    /// Everything the server wrote on stderr so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    /// The OpenAI base URL of the server.
    public var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    /// Sends `signal` (none: only waits) and waits for the exit (SIGKILL after `timeout` s): the exit status, or nil
    /// if it was killed.
    @discardableResult
    public func stop(_ signal: Int32? = SIGTERM, timeout: Double = 30) -> Int32? {
        if let signal, process.isRunning { kill(process.processIdentifier, signal) }
        let sent = Date()
        while process.isRunning && Date().timeIntervalSince(sent) < timeout { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationReason == .exit ? process.terminationStatus : nil
    }

    deinit {
        stop(SIGKILL, timeout: 5)
        try? FileManager.default.removeItem(atPath: logPath)
    }
}
