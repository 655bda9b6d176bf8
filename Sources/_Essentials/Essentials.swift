// The handful of conveniences Eaglet's loaders used from all of Foundation, written for
// FoundationEssentials so the modules that the static `eaglet-gpu` binary links carry no ICU
// (docs/gpu.md): path joining and splitting, "is this a folder", printf-style formatting, a mutex,
// one line to stderr and a flush of stdout. JSON is in JSON.swift.
// What it is not: a general replacement for Foundation; each function is as small as its callers need.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
// @preconcurrency: only for `stderr` and `stdout`, C globals that Eaglet never reassigns
// (stdio locks each FILE itself).
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
@preconcurrency import Darwin
#endif

/// Paths as plain strings, the way NSString's path methods treat them.
public enum Path {
    /// `a/b`, with exactly one slash between (b absolute: b).
    public static func join(_ a: String, _ b: String) -> String {
        if b.hasPrefix("/") || a.isEmpty { return b }
        return a.hasSuffix("/") ? a + b : a + "/" + b
    }

    /// The last component ("model.safetensors" of "x/y/model.safetensors"); trailing slashes ignored.
    public static func lastComponent(_ p: String) -> String {
        let t = trimmed(p)
        guard let s = t.lastIndex(of: "/") else { return t }
        return t == "/" ? "/" : String(t[t.index(after: s)...])
    }

    /// Everything before the last component ("x/y" of "x/y/z", "" of "z", "/" of "/z").
    public static func deletingLastComponent(_ p: String) -> String {
        let t = trimmed(p)
        guard let s = t.lastIndex(of: "/") else { return "" }
        return s == t.startIndex ? "/" : String(t[..<s])
    }

    static func trimmed(_ p: String) -> String {
        var t = p
        while t.count > 1 && t.hasSuffix("/") { t.removeLast() }
        return t
    }

    /// nil when nothing is at `p`, else whether it is a folder (symbolic links followed).
    public static func isDirectory(_ p: String) -> Bool? {
        var st = stat()
        guard stat(p, &st) == 0 else { return nil }
        return (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Why `p` cannot be looked at (after `isDirectory` returned nil): "no such file or folder", "is a loop of
    /// symbolic links", or the system's own words (permission denied, name too long, …).
    public static func whyUnreachable(_ p: String) -> String {
        var st = stat()
        if stat(p, &st) == 0 { return "exists" }
        switch errno {
        case ENOENT, ENOTDIR: return "no such file or folder"
        case ELOOP: return "is a loop of symbolic links"
        default: return String(cString: strerror(errno)).lowercased()
        }
    }
}

/// printf-style formatting through the C library (`%.2f`, `%04x`, `%e`): what String(format:) did.
public func cFormat(_ format: String, _ args: CVarArg...) -> String {
    withVaList(args) { va -> String in
        var buffer = [CChar](repeating: 0, count: 256)
        let n = Int(vsnprintf(&buffer, buffer.count, format, va))
        if n < buffer.count { return String(cString: buffer) }
        buffer = [CChar](repeating: 0, count: n + 1)
        return withVaList(args) { va2 in
            _ = vsnprintf(&buffer, buffer.count, format, va2); return String(cString: buffer)
        }
    }
}

/// Writes `line` and a newline to standard error.
public func printToStandardError(_ line: String) {
    fputs(line + "\n", stderr)
}

/// Flushes what `print` left in standard output's buffer (for text streamed without a newline).
public func flushStandardOutput() {
    fflush(stdout)
}

/// A pthread mutex (NSLock's job).
// @unchecked: the pthread mutex is allocated in init, freed in deinit and only used through pthread_mutex_lock/unlock.
public final class Mutex: @unchecked Sendable {
    private let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    public init() { pthread_mutex_init(m, nil) }
    deinit { pthread_mutex_destroy(m); m.deallocate() }
    public func lock() { pthread_mutex_lock(m) }
    public func unlock() { pthread_mutex_unlock(m) }
}

/// A pthread mutex with one condition variable (NSCondition's job): lock, wait (unlocks while asleep), broadcast,
/// unlock. The one such pair in Eaglet: `ThreadBarrier` and `PairQueues` are built on it.
// @unchecked: the mutex and condition are allocated in init, freed in deinit and only used through pthread calls.
public final class Condition: @unchecked Sendable {
    private let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let c = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    public init() { pthread_mutex_init(m, nil); pthread_cond_init(c, nil) }
    deinit { pthread_cond_destroy(c); pthread_mutex_destroy(m); c.deallocate(); m.deallocate() }
    public func lock() { pthread_mutex_lock(m) }
    public func unlock() { pthread_mutex_unlock(m) }
    public func wait() { pthread_cond_wait(c, m) }
    public func broadcast() { pthread_cond_broadcast(c) }
}

/// A reusable barrier for a fixed number of threads.
// @unchecked: `waiting` and `generation` are only touched with `cond` locked.
public final class ThreadBarrier: @unchecked Sendable {
    private let cond = Condition()
    private let parties: Int
    private var waiting = 0, generation = 0

    public init(parties: Int) { self.parties = parties }

    /// Returns once all `parties` threads have called it.
    public func wait() {
        cond.lock()
        let g = generation
        waiting += 1
        if waiting == parties {
            waiting = 0; generation += 1
            cond.broadcast()
        } else {
            while g == generation { cond.wait() }
        }
        cond.unlock()
    }
}

/// Items passed between the threads of a group of `world`: per ordered pair (source, destination), a queue in the
/// order `put` was called; `put` never blocks, `take` waits for the next item from its source.
// @unchecked: `items` is only touched with `cond` locked.
public final class PairQueues<Item>: @unchecked Sendable {
    public let world: Int
    private let cond = Condition()
    private var items: [[Item]]

    public init(world: Int) {
        self.world = world
        items = Array(repeating: [], count: world * world)
    }

    public func put(_ item: Item, from s: Int, to d: Int) {
        cond.lock()
        items[s * world + d].append(item)
        cond.broadcast()
        cond.unlock()
    }

    public func take(from s: Int, to d: Int) -> Item {
        cond.lock()
        while items[s * world + d].isEmpty { cond.wait() }
        let item = items[s * world + d].removeFirst()
        cond.unlock()
        return item
    }
}

/// Starts `body` on a new POSIX thread with a stack of `stackSize` bytes and returns it (join it with
/// pthread_join); nil, with `body` not run, when the thread could not be created.
public func startThread(stackSize: Int, _ body: @escaping @Sendable () -> Void) -> pthread_t? {
    final class Job: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let job = Unmanaged.passRetained(Job(body)).toOpaque()
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    pthread_attr_setstacksize(&attr, stackSize)
    var th = pthread_t()
    let rc = pthread_create(
        &th, &attr,
        { raw in
            guard let raw else { return nil }
            Unmanaged<Job>.fromOpaque(raw).takeRetainedValue().body()
            return nil
        }, job)
    pthread_attr_destroy(&attr)
    guard rc == 0 else {
        Unmanaged<Job>.fromOpaque(job).release()
        return nil
    }
    return th
}

/// Runs body(0) on this thread and body(1) … body(n − 1) on n − 1 new threads at the same time (so
/// they may meet at a `ThreadBarrier`), and returns when all have finished.
public func runConcurrently(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
    var threads = [pthread_t]()
    for p in 1..<max(n, 1) {
        if let th = startThread(stackSize: 4 << 20, { body(p) }) {
            threads.append(th)
        } else {
            // No thread: run it here (a barrier in `body` would then wait forever, so callers size n to the cores).
            body(p)
        }
    }
    body(0)
    for th in threads { pthread_join(th, nil) }
}

/// Runs `arguments` (looked up on PATH by /bin/sh) and returns its exit status and standard output;
/// nil when it could not be started. Standard error passes through.
public func runCapturingOutput(_ arguments: [String]) -> (status: Int32, output: String)? {
    let command = arguments.map { "'" + $0.replacing("'", with: "'\\''") + "'" }.joined(separator: " ")
    guard let f = popen(command, "r") else { return nil }
    var bytes = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        bytes.append(contentsOf: buffer[0..<n])
    }
    let status = pclose(f)
    return ((status >> 8) & 0xff, String(decoding: bytes, as: UTF8.self))
}

/// Appends `text` to the file at `path` (created when missing).
public func appendToFile(_ path: String, _ text: String) -> Bool {
    guard let f = fopen(path, "a") else { return false }
    defer { fclose(f) }
    return fputs(text, f) >= 0
}

/// Today's date in UTC as YYYY-MM-DD.
public func todayUTC() -> String {
    var t = time(nil)
    var tm = tm()
    gmtime_r(&t, &tm)
    return cFormat("%04d-%02d-%02d", Int32(tm.tm_year + 1900), Int32(tm.tm_mon + 1), Int32(tm.tm_mday))
}

/// `s` padded with spaces on the right to at least `n` characters.
public func padded(_ s: String, _ n: Int) -> String {
    s.count >= n ? s : s + String(repeating: " ", count: n - s.count)
}

/// Lets glibc keep freed buffers of up to 32 MiB for reuse instead of returning each to the kernel. A decoder
/// layer allocates and frees the same few multi-megabyte activations (the MLP's (T, I) gate and up products)
/// once a layer; by default glibc serves each from a fresh mmap, so every layer pays its page faults again
/// (measured: 300 K extra minor faults in a 512-token, 24-layer prefill). Freed memory at the top of the heap goes
/// back to the kernel only beyond `keep` bytes (256 MiB by default). A training step frees its whole tape (hundreds of
/// megabytes) at its end and allocates it again in the next: `eaglet train` keeps up to 2 GiB (measured on
/// tiny-eagle's 48-sample steps: 1.16 M minor faults in 12 steps with 256 MiB, 0.29 M with 2 GiB, about 0.2 s a step).
/// Process-wide, so only the executables (eaglet, eaglet-bench) call it, at start; library code never does.
/// (`mallopt` is looked up with dlsym: glibc's <malloc.h> is not in Swift's Glibc module; where it is absent,
/// such as on macOS, nothing changes.)
public func reuseFreedTensorMemory(keep: Int = 256 << 20) {
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
    let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
    let trimThreshold: Int32 = -1, mmapThreshold: Int32 = -3 // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD in <malloc.h>
    _ = mallopt(mmapThreshold, 32 << 20)
    _ = mallopt(trimThreshold, Int32(clamping: keep))
}

/// The bytes of a "Key:   1234 kB" line of a /proc file (meminfo, self/status), or nil.
public func procBytes(_ path: String, _ key: String) -> Int? {
    guard let d = FileManager.default.contents(atPath: path) else { return nil }
    for line in String(decoding: d, as: UTF8.self).split(separator: "\n") where line.hasPrefix(key + ":") {
        return line.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }.first.map { $0 * 1024 }
    }
    return nil
}

/// The process's peak resident memory so far (VmHWM in /proc/self/status), in bytes; 0 where it cannot be read.
public func peakResidentBytes() -> Int { procBytes("/proc/self/status", "VmHWM") ?? 0 }

/// Why a file named by a user could not be read.
public enum FileReadProblem: Error, Equatable, CustomStringConvertible {
    case missing
    /// A FIFO, device, socket or folder: opened without blocking and refused before any read.
    case notRegular(kind: String)
    case tooLarge(bytes: Int, limit: Int)
    case unreadable(String)

    public var description: String {
        switch self {
        case .missing: return "no such file"
        case let .notRegular(kind): return "is \(kind), not a regular file"
        case let .tooLarge(b, l): return "is \(b) bytes, above the limit of \(l)"
        case let .unreadable(why): return "cannot be read (\(why))"
        }
    }
}

/// Opens `path` read-only without blocking and checks with fstat that it is a regular file, before anything is
/// read; returns the descriptor (the caller closes it) and the size. A FIFO, device, socket or folder is refused.
public func openRegularFile(_ path: String) throws -> (fd: Int32, size: Int) {
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else {
        switch errno {
        case ENOENT: throw FileReadProblem.missing
        case ELOOP: throw FileReadProblem.unreadable("a loop of symbolic links")
        default: throw FileReadProblem.unreadable(String(cString: strerror(errno)))
        }
    }
    var st = stat()
    guard fstat(fd, &st) == 0 else {
        let why = String(cString: strerror(errno))
        close(fd)
        throw FileReadProblem.unreadable(why)
    }
    let kind: String
    switch st.st_mode & S_IFMT {
    case S_IFREG: return (fd, Int(st.st_size))
    case S_IFIFO: kind = "a FIFO"
    case S_IFDIR: kind = "a folder"
    case S_IFCHR, S_IFBLK: kind = "a device"
    default: kind = "not a plain file"
    }
    close(fd)
    throw FileReadProblem.notRegular(kind: kind)
}

/// The bytes of the regular file at `path`, at most `limit` of them. The file is opened without blocking and
/// checked with fstat before anything is read, so a FIFO (which would block in open or read), a device such as
/// /dev/zero (which never ends) or a file over the limit is refused at once.
///
/// With `headerBytes` > 0, the first `headerBytes` (or the whole file, when smaller) are read first and handed to
/// `checkHeader` with the file's size; if it throws, nothing more is read. A file whose first bytes already show
/// it is not what it claims costs those bytes, not its whole size.
public func readRegularFile(
    _ path: String, limit: Int, headerBytes: Int = 0,
    checkHeader: ((_ prefix: [UInt8], _ size: Int) throws -> Void)? = nil
) throws -> [UInt8] {
    let (fd, size) = try openRegularFile(path)
    defer { close(fd) }
    guard size <= limit else { throw FileReadProblem.tooLarge(bytes: size, limit: limit) }
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    if headerBytes > 0, let checkHeader {
        let want = min(size, headerBytes)
        while done < want {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, want - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            done += n
        }
        try checkHeader(Array(bytes.prefix(done)), size)
    }
    while done < size {
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { break } // the file shrank: return what was there
        done += n
    }
    return done == size ? bytes : Array(bytes.prefix(done))
}
