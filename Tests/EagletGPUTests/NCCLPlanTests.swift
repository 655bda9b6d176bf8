// Context parallelism over NCCL without a GPU: every scheme runs on thread ranks whose communicator is an
// `NCCLCommunicator` over the plan transport (each NCCL call recorded, the bytes moved by a ThreadCommunicator),
// as `GemmCall.emulate` checks the cuBLAS plan. Checked per scheme and world: out and LSE against the single-rank
// `fullAttention` (itself checked against PyTorch in ContextParallelTests) within fp32-block; the recorded calls
// played against each other as NCCL pairs them (every send met by the peer's receive of the same count and type,
// in order, groups balanced, no deadlock); and bytes: recorded = the thread communicator's, floats = chapter 13's
// formula. Also the library search and the unique-id file, which need no GPU either.
import ContextParallel
import EagletGPU
import Foundation
import QwenAttention
import Tensor
import Testing
import _TestSupport

/// One rank's run over the plan transport.
struct PlanRun {
    let result: CPResult
    let calls: [NCCLCall]
    /// NCCLCommunicator.bytesSent (floats only) and the wrapped ThreadCommunicator's bytesSent (every element).
    let bytes: Int, wireBytes: Int
}

/// Runs `plan` on thread ranks, each through NCCLCommunicator → NCCLPlanTransport → ThreadCommunicator.
func runOverNCCLPlan(_ plan: CPPlan, q: Tensor, k: Tensor, v: Tensor) -> [PlanRun] {
    ThreadWorld.run(world: plan.world) { inner in
        let transport = NCCLPlanTransport(inner: inner)
        let comm = NCCLCommunicator(transport: transport)
        let l = plan.layouts[comm.rank]
        let r = contextParallelAttention(
            q: Sharding.shard(q, l), k: Sharding.shard(k, l), v: Sharding.shard(v, l), plan: plan, comm: comm)
        return PlanRun(result: r, calls: transport.calls, bytes: comm.bytesSent, wireBytes: inner.bytesSent)
    }
}

/// Plays every rank's recorded calls against each other the way NCCL pairs them, and returns what is wrong
/// (empty when the plan is sound). A rank's calls are steps: a group (ncclGroupStart … ncclGroupEnd, only
/// sends and receives inside) or an all-gather (outside groups). A send and a receive match when they are
/// the k-th message between the same ordered pair of ranks and both sit in their ranks' current steps; then
/// their counts and types must agree. A group completes once all its calls are matched; an all-gather once
/// every rank has reached one, all of the same count. Ranks that can no longer move are a deadlock.
func ncclPlanProblems(_ plans: [[NCCLCall]]) -> [String] {
    struct Op { let send: Bool, peer: Int, count: Int, type: NCCLDataType, ordinal: Int }
    enum Step {
        case group([Op])
        case allGather(Int, NCCLDataType)
    }
    let w = plans.count
    var problems = [String]()
    var steps = [[Step]](repeating: [], count: w)
    for (r, calls) in plans.enumerated() {
        var open: [Op]? = nil
        var sent = [Int](repeating: 0, count: w), received = [Int](repeating: 0, count: w)
        for c in calls {
            switch c {
            case .groupStart:
                if open != nil { problems.append("rank \(r): ncclGroupStart inside a group") }
                open = []
            case .groupEnd:
                if let ops = open {
                    steps[r].append(.group(ops))
                } else {
                    problems.append("rank \(r): ncclGroupEnd without ncclGroupStart")
                }
                open = nil
            case let .send(n, t, p), let .recv(n, t, p):
                let isSend: Bool
                if case .send = c { isSend = true } else { isSend = false }
                guard p >= 0, p < w, p != r else { problems.append("rank \(r): \(c) to a bad peer"); continue }
                guard open != nil else { problems.append("rank \(r): \(c) outside a group"); continue }
                let ordinal = isSend ? sent[p] : received[p]
                if isSend { sent[p] += 1 } else { received[p] += 1 }
                open?.append(Op(send: isSend, peer: p, count: n, type: t, ordinal: ordinal))
            case let .allGather(n, t):
                if open != nil { problems.append("rank \(r): \(c) inside a group") }
                steps[r].append(.allGather(n, t))
            }
        }
        if open != nil { problems.append("rank \(r): a group is never ended") }
    }
    var at = [Int](repeating: 0, count: w)
    var matched = [[Bool]](repeating: [], count: w)
    func reset(_ r: Int) {
        if at[r] < steps[r].count, case let .group(ops) = steps[r][at[r]] {
            matched[r] = [Bool](repeating: false, count: ops.count)
        }
    }
    for r in 0..<w { reset(r) }
    var moved = true
    while moved {
        moved = false
        // All-gathers: every rank must be at one.
        if (0..<w).allSatisfy({ at[$0] < steps[$0].count }),
            case .allGather = steps[0][at[0]],
            (0..<w).allSatisfy({ if case .allGather = steps[$0][at[$0]] { return true } else { return false } })
        {
            var shapes = Set<String>()
            for r in 0..<w { if case let .allGather(n, t) = steps[r][at[r]] { shapes.insert("\(n) \(t)") } }
            if shapes.count > 1 { problems.append("ncclAllGather with different counts: \(shapes.sorted())") }
            for r in 0..<w { at[r] += 1; reset(r) }
            moved = true
            continue
        }
        // Sends and receives posted on both sides meet.
        for r in 0..<w where at[r] < steps[r].count {
            guard case let .group(ops) = steps[r][at[r]] else { continue }
            for (i, op) in ops.enumerated() where !matched[r][i] {
                let p = op.peer
                guard at[p] < steps[p].count, case let .group(peerOps) = steps[p][at[p]] else { continue }
                guard
                    let j = peerOps.firstIndex(where: { $0.send != op.send && $0.peer == r && $0.ordinal == op.ordinal }
                    )
                else { continue }
                if peerOps[j].count != op.count || peerOps[j].type != op.type {
                    problems.append(
                        "message \(op.ordinal) between ranks \(r) and \(p): \(op.count) \(op.type) against \(peerOps[j].count) \(peerOps[j].type)"
                    )
                }
                matched[r][i] = true
                matched[p][j] = true
            }
        }
        for r in 0..<w where at[r] < steps[r].count {
            if case .group = steps[r][at[r]], matched[r].allSatisfy({ $0 }) {
                at[r] += 1; reset(r)
                moved = true
            }
        }
    }
    for r in 0..<w where at[r] < steps[r].count {
        problems.append("deadlock: rank \(r) stuck at step \(at[r]) of \(steps[r].count)")
    }
    return problems
}

@Suite struct NCCLPlanTests {
    /// H = 4 query heads over Hkv = 2, D = 8; one sequence of 48 tokens, and 16 + 32 packed.
    static let shapes: [(name: String, cu: [Int])] = [("one sequence", [0, 48]), ("packed 16 + 32", [0, 16, 48])]

    @Test(arguments: CPStrategy.allCases, [2, 4])
    func schemeOverNCCLPlanMatchesFullAttentionWithAPairedPlan(strategy: CPStrategy, world: Int) throws {
        let h = 4, hkv = 2, d = 8
        for (name, cu) in Self.shapes {
            let t = cu.last ?? 0
            let q = Tensor.seeded([h, t, d], seed: 31), k = Tensor.seeded([hkv, t, d], seed: 32)
            let v = Tensor.seeded([hkv, t, d], seed: 33)
            let plan = try CPPlan(
                strategy: strategy, world: world, heads: h, kvHeads: hkv, cuSeqlens: cu,
                ulysses: strategy == .usp ? 2 : nil)
            let what = "\(strategy) W=\(world) \(name)"
            let runs = runOverNCCLPlan(plan, q: q, k: k, v: v)
            // (a) Every rank's rows of full attention.
            let single = try fullAttention(q: q, k: k, v: v, cuSeqlens: cu)
            for (r, run) in runs.enumerated() {
                let l = plan.layouts[r]
                assertClose(run.result.out, Sharding.shard(single.out, l), .fp32Block, "\(what) rank \(r) out")
                assertClose(run.result.lse, Sharding.shard(single.lse, l), .fp32Block, "\(what) rank \(r) lse")
            }
            // (b) The calls pair up as NCCL needs.
            let problems = ncclPlanProblems(runs.map(\.calls))
            #expect(problems.isEmpty, "\(what): \(problems.prefix(5))")
            // (c) Bytes: floats as chapter 13's formula; every recorded element is what the threads carried.
            for (r, run) in runs.enumerated() {
                let recorded = run.calls.reduce(0) { $0 + $1.bytesSent(world: world) }
                let recordedFloats = run.calls.reduce(0) {
                    switch $1 {
                    case .send(_, .float32, _), .allGather(_, .float32): return $0 + $1.bytesSent(world: world)
                    default: return $0
                    }
                }
                #expect(run.bytes == plan.forwardBytesPerRank(headDim: d), "\(what) rank \(r) bytes vs formula")
                #expect(recordedFloats == run.bytes, "\(what) rank \(r) recorded float bytes")
                #expect(recorded == run.wireBytes, "\(what) rank \(r) recorded bytes vs the thread communicator's")
            }
        }
    }

    /// The collectives NCCL is asked for: Llama3 gathers kv with ncclAllGather; plain Ulysses sends to every
    /// other rank in one group; the ring sends one block a step, W − 1 steps.
    @Test func eachSchemeUsesTheNCCLCallsOfItsCollective() throws {
        let h = 4, hkv = 2, d = 8, t = 48, w = 4, n = t / w
        let q = Tensor.seeded([h, t, d], seed: 31), k = Tensor.seeded([hkv, t, d], seed: 32)
        let v = Tensor.seeded([hkv, t, d], seed: 33)
        func calls(_ s: CPStrategy) throws -> [NCCLCall] {
            let plan = try CPPlan(strategy: s, world: w, heads: h, kvHeads: hkv, cuSeqlens: [0, t])
            return runOverNCCLPlan(plan, q: q, k: k, v: v)[1].calls
        }
        let llama3 = try calls(.llama3)
        #expect(llama3 == [.allGather(count: 1, type: .int64), .allGather(count: 2 * hkv * n * d, type: .float32)])
        let ring = try calls(.zigzag)
        let block = 2 * hkv * n * d
        let step: [NCCLCall] = [
            .groupStart, .send(count: 1, type: .int64, peer: 2), .recv(count: 1, type: .int64, peer: 0), .groupEnd,
            .groupStart, .send(count: block, type: .float32, peer: 2), .recv(count: block, type: .float32, peer: 0),
            .groupEnd
        ]
        #expect(ring == Array([[NCCLCall]](repeating: step, count: w - 1).joined()))
        let ulysses = try calls(.ulysses)
        let floatGroups = ulysses.split(separator: .groupEnd).filter { g in
            g.contains { if case .send(_, .float32, _) = $0 { return true } else { return false } }
        }
        #expect(floatGroups.count == 2, "two all-to-alls: in and back")
        for g in floatGroups {
            #expect(g.filter { if case .send = $0 { return true } else { return false } }.count == w - 1)
            #expect(g.filter { if case .recv = $0 { return true } else { return false } }.count == w - 1)
        }
    }

    /// The checker is not vacuous: receive-first on both sides deadlocks, and mismatched counts are named.
    @Test func planCheckerFindsDeadlocksAndMismatchedCounts() {
        let recvThenSend: (Int) -> [NCCLCall] = { p in
            [
                .groupStart, .recv(count: 4, type: .float32, peer: p), .groupEnd, .groupStart,
                .send(count: 4, type: .float32, peer: p), .groupEnd
            ]
        }
        #expect(ncclPlanProblems([recvThenSend(1), recvThenSend(0)]).contains { $0.hasPrefix("deadlock") })
        let exchange: (Int, Int) -> [NCCLCall] = { p, m in
            [.groupStart, .send(count: 4, type: .float32, peer: p), .recv(count: m, type: .float32, peer: p), .groupEnd]
        }
        #expect(ncclPlanProblems([exchange(1, 4), exchange(0, 4)]).isEmpty)
        #expect(
            ncclPlanProblems([exchange(1, 4), exchange(0, 5)]).contains { $0.contains("4 float32 against 5 float32") })
        #expect(ncclPlanProblems([[.groupStart], [.groupEnd]]).count == 2)
    }

    /// Without libnccl the search fails with a typed error naming EAGLET_NCCL_LIBRARY and the wheel folders;
    /// the variable is tried first.
    @Test func aMissingNCCLIsATypedErrorNamingWhatWasTried() {
        setenv("EAGLET_NCCL_LIBRARY", "/nonexistent/nccl", 1)
        defer { unsetenv("EAGLET_NCCL_LIBRARY") }
        #expect(NCCLLibrary.candidates.first == "/nonexistent/nccl/libnccl.so.2")
        do {
            _ = try NCCLDeviceTransport.makeUniqueId()
            print("NCCL found on this host: the missing-library path cannot be shown here")
        } catch let e as NCCLError {
            guard case let .libraryNotFound(tried) = e else { Issue.record("unexpected \(e)"); return }
            #expect(tried.first == "/nonexistent/nccl/libnccl.so.2")
            #expect(tried.last == "the loader's default path")
            #expect("\(e)".contains("EAGLET_NCCL_LIBRARY") && "\(e)".contains("nvidia-nccl"))
        } catch {
            Issue.record("expected an NCCLError, got \(error)")
        }
    }

    @Test func theUniqueIdTravelsThroughAFileAndWaitingForItTimesOut() throws {
        let dir = NSTemporaryDirectory() + "eaglet-nccl-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = try NCCLUniqueId(bytes: (0..<128).map { UInt8($0 * 7 % 256) })
        #expect(throws: NCCLError.idFileTimeout(path: dir + "/id", seconds: 0.1)) {
            try NCCLUniqueIdFile.wait(at: dir + "/id", timeout: 0.1)
        }
        try NCCLUniqueIdFile.publish(id, to: dir + "/id")
        #expect(try NCCLUniqueIdFile.wait(at: dir + "/id", timeout: 1) == id)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["id"], "no temporary file left")
        #expect(throws: NCCLError.self) { try NCCLUniqueIdFile.publish(id, to: dir + "/id") }
        FileManager.default.createFile(atPath: dir + "/short", contents: Data([1, 2, 3]))
        #expect(throws: NCCLError.badUniqueId(byteCount: 3)) {
            try NCCLUniqueIdFile.wait(at: dir + "/short", timeout: 1)
        }
    }

    /// `eaglet-gpu cp` and `cp-prefill` where they cannot run: bad flags and a missing GPU each give one line on
    /// stderr and exit 1.
    @Test func eagletGPUCpWithoutAGPUOrWithBadFlagsExitsOneWithOneLine() throws {
        let exe = repositoryRoot + "/.build/release/eaglet-gpu"
        guard FileManager.default.isExecutableFile(atPath: exe) else { return } // the binary is not built
        let flags = ["--world", "2", "--seq", "16", "--heads", "2", "--kv-heads", "1"]
        let idFile = NSTemporaryDirectory() + "eaglet-nccl-id-\(getpid())"
        let cases: [(args: [String], prefix: String)] = [
            (["--strategy", "bogus", "--rank", "0", "--id-file", idFile], "cp: --strategy: \"bogus\" is not one of"),
            (["--strategy", "ring"], "cp: --rank is needed"),
            (["--strategy", "ring", "--rank", "2", "--id-file", idFile], "cp: --rank 2 is outside 0 ..< 2"),
            (["--strategy", "ring", "--rank", "0"], "cp: --id-file PATH is needed"),
            (["--strategy", "zigzag", "--rank", "0", "--id-file", idFile], "cp: no GPU"),
            (["--strategy", "zigzag", "--ranks-on-one-gpu"], "cp: no GPU"),
            (
                ["--strategy", "ring", "--ranks-on-one-gpu", "--head-dim", "12"],
                "cp: --head-dim must be a multiple of 8"
            ),
            (["--strategy", "ring", "--ranks-on-one-gpu", "--repeats", "0"], "Error: --repeats must be in 1 … 100")
        ]
        /// Runs eaglet-gpu with `args` (OMPI_COMM_WORLD_RANK unset): exit status and standard error.
        func run(_ args: [String]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = args
            var env = ProcessInfo.processInfo.environment
            env["OMPI_COMM_WORLD_RANK"] = nil
            p.environment = env
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationReason == .exit ? p.terminationStatus : -1, text)
        }
        for c in cases {
            if c.prefix == "cp: no GPU", (try? GPU.open()) != nil { continue } // a GPU host
            let (status, text) = try run(
                ["cp"] + c.args + flags + (c.args.contains("--head-dim") ? [] : ["--head-dim", "8"]))
            #expect(status == 1, "\(c.args): \(status)")
            #expect(text.hasPrefix(c.prefix), "\(c.args): \(text)")
            #expect(text.split(separator: "\n").count == 1, "\(c.args): \(text)")
        }
        #expect(!FileManager.default.fileExists(atPath: idFile), "no id file is written before the GPU opens")
        let (status, text) = try run([
            "cp-prefill", "--model", "/nonexistent/eaglet-model", "--strategy", "zigzag", "--world", "2", "--seq", "64",
            "--ranks-on-one-gpu"
        ])
        #expect(status == 1 && text.hasPrefix("cp-prefill: ") && text.split(separator: "\n").count == 1, "\(text)")
    }
}
