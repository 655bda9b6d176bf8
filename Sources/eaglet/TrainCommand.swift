// `eaglet train` and `eaglet eval` (docs/cli.md, chapter 16): training on LLaVA-format JSONL with the module Train,
// and greedy exact-match evaluation against the gpt turns.
import ArgumentParser
import Eaglet
import Foundation
import Synchronization
import _Essentials

/// Set by SIGINT: the loop saves a resumable checkpoint after the step in flight, then exits. An atomic, so the
/// loop sees the handler's store (a plain global may be read once and kept in a register).
let interrupted = Atomic<Bool>(false)

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract:
            "Train (all or some parts of) a checkpoint on LLaVA-format JSONL; save it in the layout generate loads.",
        discussion: """
            Each step takes the next --batch-samples samples (file order, or --shuffle --seed), fits them to \
            --max-context by degrading tiles (text is never cut), packs them into one sequence (positions restart, \
            attention stays within each sample), and takes one AdamW step on the mean cross-entropy of the gpt \
            turns. --max-context 256,512,1024 grows the context in equal stages of the run. --json prints one line \
            per step: {"step","loss","tokens","supervised_tokens","lr","grad_norm","seconds"}. Ctrl-C saves a \
            resumable checkpoint to --out; a non-finite loss stops the run and keeps the last saved one.
            """)

    @Option(help: "Checkpoint folder to start from.") var model: String
    @Option(help: "Training data: JSONL, one conversation a line.") var data: String
    @Option(help: "Optimizer steps.") var steps: Int
    @Option(help: "Samples packed into each step.") var batchSamples: Int = 8
    @Option(help: "Peak learning rate.") var lr: Double = 1e-3
    @Option(help: "AdamW betas, B1,B2.") var betas: String = "0.9,0.95"
    @Option(help: "AdamW epsilon.") var eps: Double = 1e-8
    @Option(help: "Decoupled weight decay, on matrices only.") var weightDecay: Double = 0
    @Option(help: "constant or cosine.") var schedule: String = "constant"
    @Option(help: "Linear warmup steps.") var warmup: Int = 0
    @Option(help: "Clip the gradients' global L2 norm to this.") var clip: Double?
    @Option(help: "Context of a packed step; several, comma-separated, grow it in equal stages.")
    var maxContext: String = "4096"
    @Option(help: "Parts that learn: vision, connector, language (comma-separated).")
    var train: String = "vision,connector,language"
    @Flag(help: "Shuffle the samples (seeded).") var shuffle = false
    @Option(help: "Seed of the shuffle (and of --from-scratch).") var seed: UInt64 = 0
    @Flag(help: "Re-initialise every weight (seeded) instead of starting from the checkpoint's.")
    var fromScratch = false
    @Option(help: "Folder to write the trained checkpoint to (atomically).") var out: String
    @Option(help: "Also save every K steps.") var saveEvery: Int?
    @Option(help: "Continue a run saved in this folder (its weights, optimizer and step).") var resume: String?
    @Option(help: "Weights dtype of the saved checkpoint: f32 (resumable) or bf16.") var saveDtype: String = "f32"
    @Option(help: "Write the first step's gradients, keyed by checkpoint names, to this safetensors file.")
    var dumpGradients: String?
    @Flag(help: "Count and skip missing images, samples too long for the context and samples with nothing to learn.")
    var skipBad = false
    @Flag(help: "One JSON line per step on stdout.") var json = false

    func run() throws {
        reuseFreedTensorMemory(keep: 2 << 30) // each step frees and reallocates its whole tape
        try reportingInputErrors {
            var o = TrainOptions()
            o.steps = steps; o.batchSamples = batchSamples; o.lr = lr; o.eps = eps; o.weightDecay = weightDecay
            o.warmup = warmup; o.clip = clip; o.shuffle = shuffle; o.seed = seed; o.skipBad = skipBad
            let b = betas.split(separator: ",").compactMap { Double($0) }
            guard b.count == 2, b.allSatisfy({ $0 >= 0 && $0 < 1 }) else {
                throw TrainError.badOption("--betas wants two numbers in [0, 1), got \(betas)")
            }
            o.betas = (b[0], b[1])
            guard let s = LRSchedule(rawValue: schedule) else {
                throw TrainError.badOption("--schedule is constant or cosine, got \(schedule)")
            }
            o.schedule = s
            o.maxContexts = maxContext.split(separator: ",").compactMap { Int($0) }
            guard !o.maxContexts.isEmpty, o.maxContexts.allSatisfy({ $0 >= 2 }) else {
                throw TrainError.badOption("--max-context wants token counts ≥ 2, got \(maxContext)")
            }
            var parts = TrainableParts()
            for p in train.split(separator: ",") {
                switch p {
                case "vision": parts.insert(.vision)
                case "connector": parts.insert(.connector)
                case "language": parts.insert(.language)
                default: throw TrainError.badOption("--train takes vision, connector and language, got \(p)")
                }
            }
            o.train = parts
            guard steps >= 1, batchSamples >= 1, lr > 0, saveEvery.map({ $0 >= 1 }) ?? true else {
                throw TrainError.badOption("--steps, --batch-samples, --lr and --save-every must be positive")
            }
            guard ["f32", "bf16"].contains(saveDtype) else { throw TrainError.badOption("--save-dtype is f32 or bf16") }
            let start = resume ?? model
            var m = try TrainingModel(directory: start)
            if fromScratch && resume == nil { m.reinitialize(seed: seed) }
            let tokPath = start + "/tokenizer.json"
            guard FileManager.default.fileExists(atPath: tokPath) else {
                throw TrainError.badOption("\(start): no tokenizer.json, which training needs to build the prompts")
            }
            let encoder = SampleEncoder(
                tokenizer: try Tokenizer(tokenizerJSON: tokPath), tiling: m.config.tiling,
                tokensPerTile: m.config.tokensPerTile)
            var trainer = Trainer(
                model: m, samples: try readTrainingSamples(data), encoder: encoder, dataFile: data, options: o)
            if let r = resume { try trainer.restore(from: r) }
            let dtype: DType = saveDtype == "bf16" ? .bf16 : .f32
            var saved: String? = resume
            signal(SIGINT) { _ in interrupted.store(true, ordering: .relaxed) }
            var unblock = sigset_t()
            sigemptyset(&unblock)
            sigaddset(&unblock, SIGINT)
            pthread_sigmask(SIG_UNBLOCK, &unblock, nil) // a parent may have spawned us with SIGINT blocked
            let log = { (s: String) in FileHandle.standardError.write(Data((s + "\n").utf8)) }
            while trainer.step < steps {
                let (r, grads) = try trainer.runStep()
                if r.step == 0, let path = dumpGradients { try Trainer.dump(grads, to: path) }
                if json {
                    print(r.json); flushStandardOutput()
                } else {
                    log(
                        "step \(r.step): loss " + cFormat("%.4f", r.loss)
                            + ", \(r.tokens) tokens (\(r.supervisedTokens) supervised), lr "
                            + cFormat("%.3g", r.lr) + ", grad norm " + cFormat("%.3g", r.gradNorm) + ", "
                            + cFormat("%.2f s", r.seconds) + (r.skipped > 0 ? ", \(r.skipped) skipped" : ""))
                }
                guard r.loss.isFinite && r.gradNorm.isFinite else {
                    throw TrainError.nonFiniteLoss(step: r.step, saved: saved)
                }
                if interrupted.load(ordering: .relaxed) {
                    try trainer.save(to: out, source: start, dtype: .f32)
                    log("eaglet train: interrupted after step \(r.step); resumable checkpoint in \(out)")
                    throw ExitCode(130)
                }
                if let k = saveEvery, trainer.step % k == 0, trainer.step < steps {
                    try trainer.save(to: out, source: start, dtype: dtype); saved = out
                }
            }
            try trainer.save(to: out, source: start, dtype: dtype)
            log("eaglet train: \(trainer.step) steps; checkpoint in \(out)")
        }
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Greedy answers to each sample's last human turn against its gpt answer: exact-match accuracy.",
        discussion: """
            A sample's prompt is its conversation up to the last gpt turn, built as for training; the answer is \
            generated greedily (at most --max-new-tokens) and compared with that turn after trimming spaces. \
            Samples with a "type" field are also counted per type. --json prints one line \
            {"samples","correct","accuracy","per_type":{…}}.
            """)

    @Option(help: "Checkpoint folder.") var model: String
    @Option(help: "JSONL, one conversation a line.") var data: String
    @Option(help: "Longest answer.") var maxNewTokens: Int = 32
    @Option(help: "Evaluate only the first N samples.") var limit: Int?
    @Flag(help: "Print one line of JSON.") var json = false

    func run() throws {
        try reportingInputErrors {
            let pipeline = try EaglePipeline(directory: model)
            guard let tok = pipeline.tokenizer else { throw EagleError.noTokenizer(directory: model) }
            let encoder = SampleEncoder(
                tokenizer: tok, tiling: pipeline.model.config.tiling, tokensPerTile: pipeline.model.config.tokensPerTile
            )
            var samples = try readTrainingSamples(data)
            if let l = limit { samples = Array(samples.prefix(max(0, l))) }
            var correct = 0, total = 0, perType = [String: (Int, Int)]()
            for s in samples {
                guard let last = s.turns.lastIndex(where: { $0.from == "gpt" }) else { continue }
                var prompt = s
                prompt.turns = Array(s.turns[..<last])
                let e = try encoder.encode(prompt, file: data)
                let r = try pipeline.generate(ids: e.ids, pixelValues: e.pixelValues, maxNewTokens: maxNewTokens)
                let answer = try tok.decode(r.tokens, skipSpecialTokens: true).trimmingCharacters(
                    in: .whitespacesAndNewlines)
                let ok = answer == s.turns[last].value.trimmingCharacters(in: .whitespacesAndNewlines)
                total += 1; if ok { correct += 1 }
                if let t = s.type { perType[t, default: (0, 0)].0 += ok ? 1 : 0; perType[t, default: (0, 0)].1 += 1 }
            }
            let acc = total > 0 ? Double(correct) / Double(total) : 0
            if json {
                let types = perType.keys.sorted().map {
                    "\(jsonString($0)):{\"correct\":\(perType[$0]!.0),\"samples\":\(perType[$0]!.1)}"
                }
                print(
                    "{\"samples\":\(total),\"correct\":\(correct),\"accuracy\":\(acc),\"per_type\":{\(types.joined(separator: ","))}}"
                )
            } else {
                print("accuracy " + cFormat("%.4f", acc) + " (\(correct) of \(total))")
                for t in perType.keys.sorted() { print("  \(t): \(perType[t]!.0) of \(perType[t]!.1)") }
            }
        }
    }
}
