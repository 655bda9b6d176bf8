// Context parallelism against PyTorch's full causal attention (Fixtures/context-parallel, from
// Fixtures/generate/context_parallel.py): every scheme, every rank's out and LSE, for W in
// {1, 2, 3, 4, 8}, MHA / GQA / packed sequences, cut with the same sharding functions the schemes use;
// also against Eaglet's single-rank kernel on awkward lengths, the ring backward against autograd
// gradients, the zigzag balance, bytes sent against the chapter's formulas, the sigmoid merge against the
// overflowing exp-sum, and Qwen2's logits with the sequence sharded.
import Foundation
import ContextParallel
import QwenAttention
import Qwen2
import SafeTensors
import Tensor
import Testing
import _TestSupport

let worlds = [1, 2, 3, 4, 8]

struct Case {
    let q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, cu: [Int]
    init(_ f: Fixture, _ name: String) throws {
        q = try f.tensor("\(name).q"); k = try f.tensor("\(name).k"); v = try f.tensor("\(name).v")
        out = try f.tensor("\(name).out"); lse = try f.tensor("\(name).lse")
        cu = try f.file.integers("\(name).cu_seqlens").values.map { Int($0) }
    }
}

/// Runs `plan` on threads; returns each rank's result and bytes sent.
func runThreads(_ plan: CPPlan, q: Tensor, k: Tensor, v: Tensor) -> [(CPResult, Int)] {
    ThreadWorld.run(world: plan.world) { comm in
        let l = plan.layouts[comm.rank]
        let r = contextParallelAttention(
            q: Sharding.shard(q, l), k: Sharding.shard(k, l), v: Sharding.shard(v, l), plan: plan, comm: comm)
        return (r, comm.bytesSent)
    }
}

/// Compares every rank's out and LSE with the sharded reference; returns the worst relative error.
@discardableResult
func checkRanks(_ results: [(CPResult, Int)], _ plan: CPPlan, out: Tensor, lse: Tensor, _ what: String) -> Float {
    var worst: Float = 0
    for (r, (res, _)) in results.enumerated() {
        let l = plan.layouts[r]
        let a = assertClose(res.out, Sharding.shard(out, l), .fp32Block, "\(what) rank \(r) out")
        let b = assertClose(res.lse, Sharding.shard(lse, l), .fp32Block, "\(what) rank \(r) lse")
        worst = max(worst, a.maxRelative, b.maxRelative)
    }
    return worst
}

@Suite struct ContextParallelMatchesFullAttention {
    let f: Fixture
    init() throws { f = try Fixture.load("context-parallel") }

    @Test(arguments: CPStrategy.allCases, worlds)
    func schemeOutAndLSEPerRankMatchPyTorch(strategy: CPStrategy, world: Int) throws {
        var worst: Float = 0
        for name in ["mha", "gqa", "packed"] {
            let c = try Case(f, name)
            let plan: CPPlan
            do {
                plan = try CPPlan(
                    strategy: strategy, world: world, heads: c.q.shape[0], kvHeads: c.k.shape[0], cuSeqlens: c.cu)
            } catch let e as ShardingError {
                // Only Ulysses may refuse these shapes: heads not divisible by its degree.
                #expect(strategy == .ulysses && c.q.shape[0] % world != 0, "\(name) W=\(world): unexpected \(e)")
                continue
            }
            let results = runThreads(plan, q: c.q, k: c.k, v: c.v)
            worst = max(worst, checkRanks(results, plan, out: c.out, lse: c.lse, "\(strategy) \(name) W=\(world)"))
            // And Eaglet's single-rank kernel gives the same.
            let single = try fullAttention(q: c.q, k: c.k, v: c.v, cuSeqlens: c.cu)
            checkRanks(results, plan, out: single.out, lse: single.lse, "\(strategy) \(name) W=\(world) vs single rank")
            for (r, (_, bytes)) in results.enumerated() {
                #expect(
                    bytes == plan.forwardBytesPerRank(headDim: c.q.shape[2]),
                    "\(strategy) \(name) W=\(world) rank \(r) bytes")
            }
        }
        #expect(worst <= 1e-5)
        print("cp \(strategy) W=\(world): worst max relative error vs PyTorch \(worst)")
    }

    @Test(arguments: worlds)
    func llama3ContiguousSplitMatchesPyTorch(world: Int) throws {
        for name in ["gqa", "packed"] {
            let c = try Case(f, name)
            let plan = try CPPlan(
                strategy: .llama3, world: world, heads: c.q.shape[0], kvHeads: c.k.shape[0], cuSeqlens: c.cu,
                split: .contiguous)
            let worst = checkRanks(
                runThreads(plan, q: c.q, k: c.k, v: c.v), plan, out: c.out, lse: c.lse,
                "llama3 contiguous \(name) W=\(world)")
            #expect(worst <= 1e-5)
        }
    }

    @Test(arguments: [(8, 1), (8, 2), (8, 8), (4, 4), (6, 2)])
    func uspWithExplicitUlyssesDegreeMatchesPyTorch(world: Int, ulysses: Int) throws {
        let c = try Case(f, world == 6 ? "mha" : "gqa")
        let plan = try CPPlan(
            strategy: .usp, world: world, heads: c.q.shape[0], kvHeads: c.k.shape[0], cuSeqlens: c.cu, ulysses: ulysses)
        #expect(plan.ulysses * plan.ring == world)
        let results = runThreads(plan, q: c.q, k: c.k, v: c.v)
        #expect(checkRanks(results, plan, out: c.out, lse: c.lse, "usp W=\(world) U=\(ulysses)") <= 1e-5)
        for (_, bytes) in results { #expect(bytes == plan.forwardBytesPerRank(headDim: c.q.shape[2])) }
    }

    @Test func ulyssesGivesEachRankTheKVHeadsItsQueryHeadsUse() throws {
        // 8 query heads over 2 kv heads, degree 8: ranks 0–3 read kv head 0, ranks 4–7 kv head 1.
        let plan = try CPPlan(strategy: .ulysses, world: 8, heads: 8, kvHeads: 2, cuSeqlens: [0, 96])
        #expect(
            (0..<8).map { plan.kvHeadRange(ulyssesRank: $0) } == [
                0..<1, 0..<1, 0..<1, 0..<1, 1..<2, 1..<2, 1..<2, 1..<2
            ])
        let wide = try CPPlan(strategy: .ulysses, world: 2, heads: 8, kvHeads: 4, cuSeqlens: [0, 96])
        #expect(wide.kvHeadRange(ulyssesRank: 1) == 2..<4)
        #expect(throws: ShardingError.headsIndivisible(heads: 6, degree: 4)) {
            try CPPlan(strategy: .ulysses, world: 4, heads: 6, kvHeads: 6, cuSeqlens: [0, 48])
        }
        #expect(throws: ShardingError.kvHeadsStraddle(heads: 6, kvHeads: 3, degree: 2)) {
            try CPPlan(strategy: .ulysses, world: 2, heads: 6, kvHeads: 3, cuSeqlens: [0, 48])
        }
    }

    @Test(arguments: worlds)
    func ringZigzagLlama3BackwardMatchPyTorchGradients(world: Int) throws {
        for name in ["gqa", "packed"] {
            let c = try Case(f, name)
            let dout = try f.tensor("\(name).dout")
            let (dq, dk, dv) = (try f.tensor("\(name).dq"), try f.tensor("\(name).dk"), try f.tensor("\(name).dv"))
            for strategy in [CPStrategy.ring, .zigzag, .llama3] {
                let plan = try CPPlan(
                    strategy: strategy, world: world, heads: c.q.shape[0], kvHeads: c.k.shape[0], cuSeqlens: c.cu)
                let results = ThreadWorld.run(world: world) { comm in
                    let l = plan.layouts[comm.rank]
                    let (q, k, v) = (Sharding.shard(c.q, l), Sharding.shard(c.k, l), Sharding.shard(c.v, l))
                    let fwd = contextParallelAttention(q: q, k: k, v: v, plan: plan, comm: comm)
                    let before = comm.bytesSent
                    let g =
                        strategy == .llama3
                        ? llama3AttentionBackward(
                            q: q, k: k, v: v, out: fwd.out, lse: fwd.lse, dout: Sharding.shard(dout, l),
                            layouts: plan.layouts, comm: comm)
                        : ringAttentionBackward(
                            q: q, k: k, v: v, out: fwd.out, lse: fwd.lse, dout: Sharding.shard(dout, l),
                            layouts: plan.layouts, comm: comm)
                    return (g, comm.bytesSent - before)
                }
                var worst: Float = 0
                for (r, (g, bytes)) in results.enumerated() {
                    let l = plan.layouts[r]
                    worst = max(
                        worst,
                        assertClose(g.dq, Sharding.shard(dq, l), .fp32Block, "\(strategy) W=\(world) rank \(r) dq")
                            .maxRelative)
                    worst = max(
                        worst,
                        assertClose(g.dk, Sharding.shard(dk, l), .fp32Block, "\(strategy) W=\(world) rank \(r) dk")
                            .maxRelative)
                    worst = max(
                        worst,
                        assertClose(g.dv, Sharding.shard(dv, l), .fp32Block, "\(strategy) W=\(world) rank \(r) dv")
                            .maxRelative)
                    #expect(bytes == plan.backwardBytesPerRank(headDim: c.q.shape[2]))
                }
                #expect(worst <= 1e-5)
                print("cp backward \(strategy) \(name) W=\(world): worst max relative error vs autograd \(worst)")
            }
        }
    }
}

@Suite struct ContextParallelProperties {
    @Test(arguments: [1, 3, 8])
    func threadCollectivesDeliverWhatEachRankSentAndCountBytes(world: Int) throws {
        // Rank r's all-gather payload is [r, r]; its all-to-all part for rank j is [10r + j] × (j + 1).
        let out = ThreadWorld.run(world: world) { comm -> ([[Float]], [[Float]], [Float], Int, Int) in
            let r = comm.rank
            let gathered = comm.allGather([Float(r), Float(r)])
            let b1 = comm.bytesSent
            let exchanged = comm.allToAll((0..<world).map { j in [Float](repeating: Float(10 * r + j), count: j + 1) })
            comm.barrier()
            let reduced = comm.reduceScatter((0..<world).map { j in [Float(j), 1] })
            let ring = GroupCommunicator(parent: comm, members: (0..<world).filter { $0 % 2 == r % 2 })
            _ = ring.allGather([1])
            return (gathered, exchanged, reduced, b1, ring.bytesSent)
        }
        for (r, (g, x, red, b1, gb)) in out.enumerated() {
            #expect(g == (0..<world).map { [Float($0), Float($0)] })
            #expect(x == (0..<world).map { i in [Float](repeating: Float(10 * i + r), count: r + 1) })
            #expect(red == [Float(r * world), Float(world)])
            #expect(b1 == (world - 1) * 2 * 4)
            #expect(gb == ((0..<world).filter { $0 % 2 == r % 2 }.count - 1) * 4)
        }
    }

    @Test(arguments: CPStrategy.allCases)
    func awkwardLengthsMatchSingleRankNaiveAttention(strategy: CPStrategy) throws {
        // T = 30 over W = 3 (zigzag chunks of 5), 5 heads over 1 kv head, head dim 3.
        let q = Tensor.seeded([5, 30, 3], seed: 71), k = Tensor.seeded([1, 30, 3], seed: 72),
            v = Tensor.seeded([1, 30, 3], seed: 73)
        let ref = attentionNaive(q: q, k: k, v: v, causal: true)
        let world = strategy == .ulysses || strategy == .usp ? 5 : 3
        let plan = try CPPlan(strategy: strategy, world: world, heads: 5, kvHeads: 1, cuSeqlens: [0, 30])
        #expect(
            checkRanks(runThreads(plan, q: q, k: k, v: v), plan, out: ref.out, lse: ref.lse, "\(strategy) T=30") <= 1e-5
        )
    }

    @Test(arguments: CPStrategy.allCases)
    func schemesOnNaiveKernelMatchBlockwiseAndPyTorch(strategy: CPStrategy) throws {
        let f = try Fixture.load("context-parallel")
        let c = try Case(f, "packed")
        let plan = try CPPlan(strategy: strategy, world: 2, heads: 4, kvHeads: 2, cuSeqlens: c.cu)
        let results = ThreadWorld.run(world: 2) { comm in
            let l = plan.layouts[comm.rank]
            let (q, k, v) = (Sharding.shard(c.q, l), Sharding.shard(c.k, l), Sharding.shard(c.v, l))
            return (
                contextParallelAttention(q: q, k: k, v: v, plan: plan, comm: comm, compute: .reference),
                contextParallelAttention(q: q, k: k, v: v, plan: plan, comm: comm, compute: .fast(threads: 1))
            )
        }
        #expect(checkRanks(results.map { ($0.0, 0) }, plan, out: c.out, lse: c.lse, "\(strategy) naive kernel") <= 1e-5)
        for (r, (naive, fast)) in results.enumerated() {
            assertClose(fast.out, naive.out, .fp32Block, "\(strategy) rank \(r) blockwise vs naive out")
            assertClose(fast.lse, naive.lse, .fp32Block, "\(strategy) rank \(r) blockwise vs naive lse")
            #expect(fast.scoreEntries == naive.scoreEntries)
        }
    }

    @Test func indivisibleLengthsAreTypedErrors() throws {
        #expect(
            throws: ShardingError.indivisible(what: "zigzag split of sequence 0 over 4 ranks", length: 36, divisor: 8)
        ) {
            try Sharding.layouts(length: 36, world: 4, split: .zigzag)
        }
        #expect(
            throws: ShardingError.indivisible(
                what: "contiguous split of sequence 1 over 3 ranks", length: 10, divisor: 3)
        ) {
            try Sharding.layouts(cuSeqlens: [0, 9, 19], world: 3, split: .contiguous)
        }
        #expect(throws: ShardingError.self) { try Sharding.layouts(cuSeqlens: [0, 9, 9], world: 1, split: .contiguous) }
        let e = ShardingError.indivisible(what: "zigzag split of sequence 0 over 4 ranks", length: 36, divisor: 8)
        #expect(e.description == "zigzag split of sequence 0 over 4 ranks: length 36 is not divisible by 8")
    }

    @Test func zigzagRankHoldsChunksRAndTwoWMinusOneMinusR() throws {
        let l = try Sharding.layouts(length: 16, world: 4, split: .zigzag)
        #expect(l[0] == [Segment(start: 0, count: 2, sequenceStart: 0), Segment(start: 14, count: 2, sequenceStart: 0)])
        #expect(l[3] == [Segment(start: 6, count: 4, sequenceStart: 0)]) // chunks 3 and 4 touch: one segment
        let packed = try Sharding.layouts(cuSeqlens: [0, 4, 12], world: 2, split: .zigzag)
        #expect(Sharding.positions(packed[1]) == [1, 2, 6, 7, 8, 9])
        let x = Tensor.seeded([2, 12, 3], seed: 5)
        #expect(Sharding.unshard(packed.map { Sharding.shard(x, $0) }, packed) == x)
    }

    @Test(arguments: [2, 3, 4, 8])
    func zigzagStepRuleEqualsVisibleBlockPairs(world: Int) throws {
        let layouts = try Sharding.layouts(length: 8 * world, world: world, split: .zigzag)
        let chunk = 4
        for r in 0..<world {
            for s in 0..<world {
                let src = (r - s + world) % world
                let halves = { (rank: Int) in
                    [
                        Segment(start: rank * chunk, count: chunk, sequenceStart: 0),
                        Segment(start: (2 * world - 1 - rank) * chunk, count: chunk, sequenceStart: 0)
                    ]
                }
                let qh = halves(r), kh = halves(src)
                var visible = [(Int, Int)]()
                for a in 0..<2 {
                    for b in 0..<2 where visibleScores(query: qh[a], key: kh[b]) > 0 { visible.append((a, b)) }
                }
                let rule = zigzagStepBlocks(rank: r, step: s, world: world)
                #expect(
                    rule.map { "\($0.queryHalf)\($0.keyHalf)" } == visible.map { "\($0.0)\($0.1)" }, "r=\(r) s=\(s)")
                for b in rule where !b.causal { // non-causal blocks are fully visible
                    #expect(visibleScores(query: qh[b.queryHalf], key: kh[b.keyHalf]) == chunk * chunk)
                }
            }
            _ = layouts
        }
    }

    @Test(arguments: [2, 3, 4, 8])
    func zigzagBalancesCausalWorkWhereContiguousRingDoesNot(world: Int) throws {
        let t = 48 * world
        let q = Tensor.seeded([2, t, 4], seed: 11), k = Tensor.seeded([2, t, 4], seed: 12),
            v = Tensor.seeded([2, t, 4], seed: 13)
        func imbalance(_ s: CPStrategy) throws -> Double {
            let plan = try CPPlan(strategy: s, world: world, heads: 2, kvHeads: 2, cuSeqlens: [0, t])
            let e = runThreads(plan, q: q, k: k, v: v).map { Double($0.0.scoreEntries) }
            #expect(Int(e.reduce(0, +)) == 2 * t * (t + 1) / 2) // every visible score exactly once
            return e.max()! / e.min()!
        }
        let zig = try imbalance(.zigzag), ring = try imbalance(.ring), llama = try imbalance(.llama3)
        #expect(zig <= 1.05)
        #expect(llama <= 1.05)
        #expect(ring > Double(world) * 0.9) // the last rank does ~(2W−1)× the first rank's work
        print("cp W=\(world): causal work imbalance zigzag \(zig), llama3-zigzag \(llama), contiguous ring \(ring)")
    }

    @Test func naiveExpSumMergeOverflowsWhereSigmoidMergeDoesNot() throws {
        // Scores around 100: e^lse overflows fp32. Keys split in two halves merged both ways.
        let q = Tensor.seeded([1, 4, 4], seed: 21) * 1, k = Tensor.seeded([1, 8, 4], seed: 22),
            v = Tensor.seeded([1, 8, 4], seed: 23)
        let scale: Float = 60
        let full = attentionNaive(
            q: q + Tensor(shape: [1, 4, 4], repeating: 1), k: k + Tensor(shape: [1, 8, 4], repeating: 1), v: v,
            causal: false, scale: scale)
        let qq = q + Tensor(shape: [1, 4, 4], repeating: 1), kk = k + Tensor(shape: [1, 8, 4], repeating: 1)
        let a = blockwiseAttention(
            q: qq, k: kk.slice(dim: 1, 0..<4), v: v.slice(dim: 1, 0..<4), causal: false, scale: scale)
        let b = blockwiseAttention(
            q: qq, k: kk.slice(dim: 1, 4..<8), v: v.slice(dim: 1, 4..<8), causal: false, scale: scale)
        #expect(full.lse.storage.allSatisfy { $0 > 89 }) // e^89 > Float.greatestFiniteMagnitude
        var (o1, l1) = (a.out.storage, a.lse.storage)
        mergeSigmoid(out: &o1, lse: &l1, blockOut: b.out.storage, blockLse: b.lse.storage, headDim: 4)
        assertClose(o1, full.out.storage, .fp32Block, "sigmoid merge out")
        assertClose(l1, full.lse.storage, .fp32Block, "sigmoid merge lse")
        var (o2, l2) = (a.out.storage, a.lse.storage)
        mergeNaiveExpSum(out: &o2, lse: &l2, blockOut: b.out.storage, blockLse: b.lse.storage, headDim: 4)
        #expect(l2.allSatisfy { !$0.isFinite } && o2.allSatisfy { $0.isNaN })
    }
}

@Suite struct ShardedQwen2MatchesSingleRank {
    @Test(arguments: [(CPStrategy.zigzag, 2), (.ring, 3), (.llama3, 4), (.ulysses, 2), (.usp, 4)])
    func shardedLogitsMatchSingleRankAndTransformers(strategy: CPStrategy, world: Int) throws {
        let f = try Fixture.load("qwen2-lm")
        let config = try Qwen2Config.load(path: f.path("a.config.json"))
        let model = try Qwen2ForCausalLM.load(config: config, checkpoint: try Checkpoint(path: f.path("a.safetensors")))
        let all = try f.file.integers("a.p2.input_ids").values.map { Int($0) }
        let expected = try f.tensor("a.p2.logits")
        let t = all.count - all.count % (2 * world)
        let ids = Array(all.prefix(t))
        let plan: CPPlan
        do {
            plan = try CPPlan(
                strategy: strategy, world: world, heads: config.numAttentionHeads, kvHeads: config.numKeyValueHeads,
                cuSeqlens: [0, t])
        } catch { Issue.record("tiny config cannot run \(strategy) W=\(world): \(error)"); return }
        let single = model.logits(ids)
        let parts = ThreadWorld.run(world: world) { comm in model.contextParallelLogits(ids, plan: plan, comm: comm) }
        let logits = Sharding.unshard(parts, plan.layouts, dim: 0)
        let r = assertClose(logits, single, .fp32Block, "\(strategy) W=\(world) vs single rank")
        assertClose(logits, expected.slice(dim: 0, 0..<t), .fp32Block, "\(strategy) W=\(world) vs transformers")
        print("cp qwen2 \(strategy) W=\(world) T=\(t): max relative vs single rank \(r.maxRelative)")
    }
}

@Suite struct ContextParallelOnMPI {
    @Test func fourProcessMPIRunEqualsThreadRun() throws {
        let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let mpirun else {
            print(
                "SKIPPED fourProcessMPIRunEqualsThreadRun: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)"
            ); return
        }
        let exe = "\(repositoryRoot)/.build/release/eaglet"
        guard FileManager.default.isExecutableFile(atPath: exe) else {
            Issue.record("eaglet binary not built at \(exe)"); return
        }
        for strategy in ["ring", "zigzag", "llama3", "ulysses", "usp", "usp --ulysses 2"] {
            let args =
                ["cp", "--strategy"] + strategy.split(separator: " ").map(String.init)
                + ["--world", "4", "--seq", "40", "--heads", "4", "--kv-heads", "2", "--head-dim", "6", "--json"]
            let viaMPI = try runJSON(mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", "4", exe] + args)
            let viaThreads = try runJSON(exe, args)
            #expect(viaMPI["mpi"] as? Bool == true && viaThreads["mpi"] as? Bool == false)
            for key in ["bytes_per_rank", "flops_per_rank"] {
                #expect((viaMPI[key] as? [Int]) == (viaThreads[key] as? [Int]), "\(strategy) \(key)")
            }
            let rel = (viaMPI["max_rel_error"] as? Double) ?? 1
            #expect(rel <= 1e-5, "\(strategy) MPI max relative error \(rel)")
            #expect(
                (viaMPI["max_rel_error"] as? Double) == (viaThreads["max_rel_error"] as? Double),
                "\(strategy): same arithmetic, same error")
        }
    }

    /// A --world that differs from mpirun's process count is reported once, by rank 0, and every rank exits 1
    /// (each rank used to print it; issue 23, minor item).
    @Test func aWorldMismatchIsReportedOnce() throws {
        guard
            let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else { return }
        let exe = "\(repositoryRoot)/.build/release/eaglet"
        guard FileManager.default.isExecutableFile(atPath: exe) else { return }
        let (status, bytes) = try run(
            mpirun,
            [
                "--allow-run-as-root", "--oversubscribe", "-np", "3", exe, "cp", "--strategy", "ring", "--world", "4",
                "--seq", "40", "--heads", "4", "--kv-heads", "2", "--head-dim", "6"
            ], stderr: true)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(status != 0, "a world mismatch under mpirun: status \(status)")
        let mentions = text.split(separator: "\n").filter { $0.contains("--world 4 differs from the 3 processes") }
        #expect(mentions.count == 1, "reported \(mentions.count) times: \(text)")
    }

    /// Runs `exe` with Open MPI's settings for this machine; its status and what it wrote to stdout (or, with
    /// `stderr`, to stderr; the other goes nowhere). A hung mpirun must not hang the suite: it is stopped after two
    /// minutes (the test then fails).
    func run(_ exe: String, _ args: [String], stderr: Bool = false) throws -> (Int32, Data) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = stderr ? FileHandle.nullDevice : pipe
        p.standardError = stderr ? pipe : FileHandle.nullDevice
        try p.run()
        let watchdog = DispatchWorkItem { if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: watchdog)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        watchdog.cancel()
        return (p.terminationStatus, data)
    }

    func runJSON(_ exe: String, _ args: [String]) throws -> [String: Any] {
        let (status, data) = try run(exe, args)
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        #expect(status == 0 && lines.count == 1, "\(exe) \(args): status \(status), \(lines.count) lines")
        guard let line = lines.last, let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { return [:] }
        return obj
    }
}
