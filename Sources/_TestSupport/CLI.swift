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
