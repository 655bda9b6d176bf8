// The one-definition pieces on their own: the parameter declarations against checkpoints that PyTorch wrote
// (Fixtures/tiny-eagle, tiny-random, qwen2-lm: the keys and shapes come from the Python side, not from Swift),
// the weight store's one check, the generation loop, and `Compute`.
import Eagle
import Foundation
import Qwen2
import QwenAttention
import SafeTensors
import SigLIP2
import Tensor
import Testing
import _TestSupport

@Suite struct ParametersAreDeclaredOnce {
    /// Every key and shape `EagleParameters` declares is in the checkpoint the Python reference wrote, and every
    /// tensor of that checkpoint is declared (the pooling head and rotary caches aside).
    @Test(arguments: ["tiny-eagle", "tiny-random"])
    func eagleDeclarationIsExactlyTheCheckpoint(name: String) throws {
        let dir = "\(repositoryRoot)/Fixtures/\(name)"
        let config = try EagleConfig.load(directory: dir)
        let store = try WeightStore(path: dir)
        let prefix = try VisionWeightNames.detect(in: store.names, source: dir).prefix
        let specs = EagleParameters(config, visionPrefix: prefix).specs
        #expect(specs.count == Set(specs.map(\.key)).count, "a key declared twice")
        var declared = [String: [Int]]()
        for s in specs { declared[store.storedKey(s) ?? s.key] = s.shape }
        let stored = store.names.filter { !$0.hasPrefix(prefix + "head.") && !$0.hasSuffix("rotary_emb.inv_freq") }
        #expect(Set(declared.keys) == Set(stored))
        for key in stored { #expect(store.source.info(key)?.shape == declared[key], "\(key)") }
        try EagleWeights.check(store, config: config) // and the check derived from them agrees
    }

    /// transformers' `Qwen2ForCausalLM` state dicts: (a) untied, Eagle layout; (b) tied, plain layout without
    /// an lm_head tensor.
    @Test(arguments: ["a", "b"])
    func qwen2DeclarationIsExactlyTheTransformersStateDict(which: String) throws {
        let f = try Fixture.load("qwen2-lm")
        let config = try Qwen2Config.load(path: f.path("\(which).config.json"))
        let store = WeightStore(try Checkpoint(path: f.path("\(which).safetensors")))
        let prefix = try #require(Qwen2Parameters.prefix(in: store))
        #expect(prefix == (which == "a" ? "language_model." : ""))
        let specs = Qwen2Parameters(config, prefix: prefix).specs
        #expect(Set(specs.compactMap { store.storedKey($0) }) == Set(store.names))
        #expect(specs.allSatisfy { store.storedKey($0).flatMap { store.source.info($0)?.shape } == $0.shape })
        // 9 tensors a layer (q/k/v weight and bias, o_proj, gate/up/down, two norms) + embedding + norm (+ head).
        #expect(specs.count == 12 * config.numHiddenLayers + 2 + (config.tieWordEmbeddings ? 0 : 1))
    }

    @Test func storeCheckListsEveryProblemAndAcceptsEitherTiedKey() throws {
        let specs = [
            ParameterSpec("a", [2]), ParameterSpec("b", [3]), ParameterSpec("embed", [4], alternateKey: "head")
        ]
        let store = WeightStore(
            TensorDictionary(
                ["a": Tensor(shape: [5]), "head": Tensor(shape: [4]), "stray": Tensor(shape: [1])],
                description: "mem"))
        #expect(
            throws: CheckpointError.mismatch(
                source: "mem", missing: ["b"], unexpected: ["stray"],
                misshaped: ["a is [5], expected [2]"])
        ) { try store.check(specs) }
        try store.check([specs[2]], ignore: { $0 != "head" })
        #expect(try store.read(specs[2]).shape == [4]) // read under its alternate key
        #expect(store.parameters == [specs[2]]) // and recorded as handed out
        #expect(throws: CheckpointError.wrongShape(source: "mem", tensor: "a", expected: [2], found: [5])) {
            try store.read(specs[0])
        }
    }
}

/// A decoder whose logits put all weight on a scripted token at each position.
struct ScriptedDecoder: TokenDecoder {
    let script: [Int], vocabulary = 10
    var prefills = 0, steps = [Int]()
    func logits(_ i: Int) -> [Float] { (0..<vocabulary).map { $0 == script[i] ? 1 : 0 } }
    mutating func prefill() throws -> [Float] { prefills += 1; return logits(0) }
    mutating func step(_ token: Int) throws -> [Float] { steps.append(token); return logits(steps.count) }
}

@Suite struct OneGenerationLoop {
    @Test func stopsAfterTheStopTokenOrTheBudget() throws {
        var d = ScriptedDecoder(script: [4, 7, 2, 9, 9, 9])
        var seen = [Int]()
        let r = try generate(&d, maxNewTokens: 10, stopTokens: [2], onToken: { seen.append($0) })
        #expect(r.tokens == [4, 7, 2] && seen == r.tokens) // the stop token is kept
        #expect(d.prefills == 1 && d.steps == [4, 7]) // no step after the stop token
        var e = ScriptedDecoder(script: [4, 7, 2, 9])
        #expect(try generate(&e, maxNewTokens: 2, stopTokens: []).tokens == [4, 7])
        #expect(e.steps == [4]) // no step after the last budgeted token
        var z = ScriptedDecoder(script: [1])
        let none = try generate(&z, maxNewTokens: 0, stopTokens: [])
        #expect(none.tokens.isEmpty && z.prefills == 0 && none.tokensPerSecond == 0)
        #expect(
            r.summary(promptTokens: 150, visualTokens: 112).hasPrefix(
                "[150 prompt tokens (112 visual), 3 new; first token "))
    }

    @Test func theCallerChoosesTheToken() throws {
        var d = ScriptedDecoder(script: [4, 7, 2, 9])
        let r = try generate(&d, maxNewTokens: 3, stopTokens: [], choose: { logits, chosen in chosen.count })
        #expect(r.tokens == [0, 1, 2] && d.steps == [0, 1])
    }
}

@Suite struct OneComputeChoice {
    @Test func referenceRunsOnOneThreadAndFastKeepsItsCount() {
        #expect(Compute(path: .reference, threads: 4).threads == 1)
        #expect(Compute.fast(threads: 3).threads == 3 && !Compute.fast(threads: 3).isReference)
        #expect(Compute.fast(threads: 3).with(threads: 1) == .fast(threads: 1))
        #expect(Compute.reference.with(threads: 8) == .reference)
    }
}

@Suite struct MemoryPlanBeforeLoading {
    /// The weights term from the headers that Python wrote: with `.f32`, fp32 bytes of every tensor (tiny-random is
    /// F32, tiny-eagle BF16, so widening doubles its data section); with `.native`, tiny-eagle's decoder
    /// projections stay at their stored BF16 bytes. Plus the largest stored tensor either way.
    @Test(arguments: ["tiny-random", "tiny-eagle"])
    func weightsAreTheWidenedDataSection(name: String) throws {
        let dir = "\(repositoryRoot)/Fixtures/\(name)"
        let file = try SafeTensorsFile(path: "\(dir)/model.safetensors")
        let stored = file.names.compactMap { file.info($0) }
        let dataBytes = stored.map(\.dataRange.count).reduce(0, +), widening = name == "tiny-eagle" ? 2 : 1
        let largest = stored.map(\.dataRange.count).max()!
        #expect(
            try MemoryPlan.read(directory: dir, contextTokens: 100, weights: .f32).weightBytes
                == dataBytes * widening + largest)
        let projection = { (n: String) in
            n.hasPrefix("language_model.")
                && (n.hasSuffix("_proj.weight") || n.hasSuffix("embed_tokens.weight") || n.hasSuffix("lm_head.weight"))
        }
        let native = stored.map { projection($0.name) ? $0.dataRange.count : $0.dataRange.count * widening }
        #expect(
            try MemoryPlan.read(directory: dir, contextTokens: 100, weights: .native).weightBytes
                == native.reduce(0, +) + largest)
    }

    /// The KV-cache term is what `KVCache` allocates for that context.
    @Test func kvCacheTermIsWhatTheCacheAllocates() throws {
        let model = try EagleModel.load(directory: "\(repositoryRoot)/Fixtures/tiny-eagle")
        let cache = model.languageModel.makeCache(capacity: 300)
        let allocated = cache.layers.map { ($0.keys.count + $0.values.count) * 4 }.reduce(0, +)
        let plan = MemoryPlan(
            residentWeightsOf: model.config, contextTokens: 300, prefillTokens: 10, availableBytes: nil)
        #expect(plan.kvCacheBytes == allocated && plan.weightBytes == 0 && plan.fits)
    }

    @Test func aPlanOverTheAvailableMemoryIsATypedError() throws {
        let dir = "\(repositoryRoot)/Fixtures/tiny-random"
        var plan = try MemoryPlan.read(directory: dir, contextTokens: 1_000_000)
        plan.availableBytes = plan.totalBytes // within 5 % is not enough
        #expect(!plan.fits)
        #expect {
            try plan.check(source: dir)
        } throws: { e in
            guard case let .doesNotFit(_, _, needed, available, _) = e as? EagleError else { return false }
            return needed == plan.totalBytes && available == plan.totalBytes
        }
        plan.availableBytes = plan.totalBytes * 2
        try plan.check(source: dir)
    }
}

@Suite struct BF16WeightsReadInPlace {
    /// Every one of the 65 536 BF16 bit patterns widens to the fp32 Tensor's own `bf16ToFloat` gives, on each
    /// vector path this CPU has.
    @Test(arguments: ["plain", "avx2", "avx512"])
    func wideningIsExactForEveryBitPattern(path: String) {
        let used = KernelPath.use(path)
        defer { KernelPath.use("avx512") }
        let all = (0..<65536).map { UInt16($0) }
        let m = all.withUnsafeBufferPointer { BF16Matrix(rows: 256, cols: 256, bits: $0.baseAddress!, owner: Box()) }
        let w = m.widened()
        #expect((0..<65536).allSatisfy { w.storage[$0].bitPattern == bf16ToFloat(all[$0]).bitPattern }, "\(used)")
    }

    /// The gemv kernel against its reference loop, on odd shapes (tails of every width), on each path.
    @Test(arguments: ["plain", "avx2", "avx512"])
    func gemvMatchesTheReferenceLoop(path: String) {
        let used = KernelPath.use(path)
        defer { KernelPath.use("avx512") }
        for (rows, cols) in [(37, 77), (64, 1000), (130, 131), (5, 3)] {
            let m = BF16Matrix(narrowing: .seeded([rows, cols], seed: UInt64(rows), scale: 0.5))
            let x = Tensor.seeded([cols], seed: 9, scale: 2).storage
            var y = [Float](repeating: 1, count: rows)
            x.withUnsafeBufferPointer { X in
                y.withUnsafeMutableBufferPointer {
                    gemvRowsBF16(m, x: X.baseAddress!, y: $0.baseAddress!, accumulate: true, threads: 2)
                }
            }
            let want = gemvBF16Reference(m, x).map { $0 + 1 }
            assertClose(
                Tensor(shape: [rows], storage: y), Tensor(shape: [rows], storage: want), .fp32Matmul,
                "\(used) \(rows)×\(cols)")
        }
    }

    /// The softmax exponentials in C, on each path: every value equals Swift's scalar `fastExp(x − m)` bit for bit
    /// (same operations, no fused multiply-adds), over inputs from far below the clamp to above it, with tails of
    /// every width; the returned sum is the Double sum within fp32-op.
    @Test(arguments: ["plain", "avx2", "avx512"])
    func expSumEqualsFastExpBitForBit(path: String) {
        let used = KernelPath.use(path)
        defer { KernelPath.use("avx512") }
        for n in [1, 7, 8, 15, 16, 33, 1000] {
            let x = (0..<n).map { Float($0 * 37 % 211) * 0.9 - 120 + Float(n % 5) }
            var row = x
            let m: Float = -3.25
            let sum = row.withUnsafeMutableBufferPointer { expInPlaceAndSum($0.baseAddress!, n, minus: m) }
            let want = x.map { fastExp($0 - m) }
            #expect(zip(row, want).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(used) n=\(n)")
            let exact = Float(want.reduce(0.0) { $0 + Double($1) })
            assertClose(
                Tensor(shape: [1], storage: [sum]), Tensor(shape: [1], storage: [exact]), .fp32Op, "\(used) n=\(n)")
        }
    }

    /// SigLIP2's fc1 bias + gelu-tanh in C, on each path: every value equals Swift's scalar `fastGelu(x + b)` bit
    /// for bit, over inputs from −12 to 12 (both tails of the tanh) with tails of every width.
    @Test(arguments: ["plain", "avx2", "avx512"])
    func biasGeluEqualsFastGeluBitForBit(path: String) {
        let used = KernelPath.use(path)
        defer { KernelPath.use("avx512") }
        for n in [1, 7, 8, 15, 16, 33, 1000] {
            let x = Tensor.seeded([1, n], seed: UInt64(n), scale: 6), b = Tensor.seeded([n], seed: 2, scale: 6)
            var got = x.storage
            got.withUnsafeMutableBufferPointer { g in
                b.storage.withUnsafeBufferPointer {
                    biasGeluRows(g.baseAddress!, rows: 0..<1, cols: n, bias: $0.baseAddress!)
                }
            }
            let want = (0..<n).map { fastGelu(x.storage[$0] + b.storage[$0]) }
            #expect(zip(got, want).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(used) n=\(n)")
        }
    }

    /// The fp32 gemv kernel (decode's product for fp32 weights) against the textbook loop in Double, on odd shapes,
    /// on each path.
    @Test(arguments: ["plain", "avx2", "avx512"])
    func f32GemvMatchesTheReferenceLoop(path: String) {
        let used = KernelPath.use(path)
        defer { KernelPath.use("avx512") }
        for (rows, cols) in [(37, 77), (64, 1000), (130, 131), (5, 3)] {
            let w = Tensor.seeded([rows, cols], seed: UInt64(rows), scale: 0.5).storage
            let x = Tensor.seeded([cols], seed: 9, scale: 2).storage
            var y = [Float](repeating: 1, count: rows)
            w.withUnsafeBufferPointer { W in
                x.withUnsafeBufferPointer { X in
                    y.withUnsafeMutableBufferPointer {
                        gemvRows(
                            W.baseAddress!, rows: rows, cols: cols, x: X.baseAddress!, y: $0.baseAddress!,
                            accumulate: true, threads: 2)
                    }
                }
            }
            let want = (0..<rows).map { r in
                Float(1 + (0..<cols).reduce(0.0) { $0 + Double(w[r * cols + $1]) * Double(x[$1]) })
            }
            assertClose(
                Tensor(shape: [rows], storage: y), Tensor(shape: [rows], storage: want), .fp32Matmul,
                "\(used) \(rows)×\(cols)")
        }
    }

    /// A BF16 Linear (gemv for one token, widened panels + sgemm for more) against the same Linear with the weight
    /// widened, with and without bias, fast and reference.
    /// Wide enough that each of two threads widens more than one panel (8 MiB of fp32 is 512 rows of 4096), with a
    /// short last panel: the prefill product against sgemm on the widened weight.
    @Test func bf16PanelsAcrossThreads() {
        let w = Tensor.seeded([1200, 4096], seed: 13, scale: 0.05).roundedToBF16(), b = Tensor.seeded([1200], seed: 4)
        let x = Tensor.seeded([5, 4096], seed: 5, scale: 2)
        let f32 = Linear(weight: w, bias: b), bf16 = Linear(bf16: BF16Matrix(narrowing: w), bias: b)
        assertClose(bf16(x, compute: .fast(threads: 2)), f32(x, compute: .fast(threads: 1)), .fp32Block)
    }

    @Test(arguments: [1, 5, 300])
    func bf16LinearMatchesTheWidenedOne(rows: Int) {
        let w = Tensor.seeded([300, 96], seed: 3, scale: 0.3).roundedToBF16(), b = Tensor.seeded([300], seed: 4)
        let x = Tensor.seeded([rows, 96], seed: 5, scale: 2)
        for bias in [nil, b] {
            let f32 = Linear(weight: w, bias: bias), bf16 = Linear(bf16: BF16Matrix(narrowing: w), bias: bias)
            assertClose(bf16(x, compute: .fast(threads: 2)), f32(x), .fp32Block, "\(rows) rows")
            assertClose(bf16(x, compute: .reference), f32(x, compute: .reference), .exact, "\(rows) rows, reference")
            var h = Tensor.seeded([rows, 300], seed: 6), g = h
            bf16(x, addingTo: &h); f32(x, addingTo: &g)
            assertClose(h, g, .fp32Block, "\(rows) rows, accumulated")
        }
    }
}

final class Box {}
