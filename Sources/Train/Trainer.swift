// The training loop behind `eaglet train` (docs/spec.md §11.4): steps of B samples in file order (or a seeded
// shuffle), fitted and packed, forward + backward, clipping, the schedule, AdamW; checkpoints in the layout
// `generate` loads, written atomically, with the optimizer beside them so `--resume` continues bit for bit.
//
// Files of a saved run folder OUT: every non-weight file of the source checkpoint (config.json, tokenizer.json, …),
// model.safetensors (every declared parameter, f32 or bf16), optimizer.safetensors (m.<key>, v.<key>; metadata:
// per-parameter step counts) and trainer_state.json (the step reached and the options that fix the data order).
// The folder is written as OUT.partial-<pid> and renamed over OUT (the previous OUT is moved aside first and removed
// last), so a crash at any point leaves either the old checkpoint or the new one, never a mixture.
import Foundation
import SafeTensors
import Tensor
import _Essentials

/// What a run does; `eaglet train`'s options.
public struct TrainOptions: Sendable {
    public var steps = 100
    public var batchSamples = 8
    public var lr = 1e-3
    public var betas = (0.9, 0.95)
    public var eps = 1e-8
    public var weightDecay = 0.0
    public var schedule = LRSchedule.constant
    public var warmup = 0
    public var clip: Double? = nil
    public var train = TrainableParts.all
    /// One context length, or several: the run's steps are split evenly into stages of growing context (the
    /// progressive schedule).
    public var maxContexts = [4096]
    public var shuffle = false
    public var seed: UInt64 = 0
    public var skipBad = false
    public init() {}

    /// The context of step k (0-based) of the run.
    public func context(step k: Int) -> Int {
        let n = maxContexts.count
        return maxContexts[min(n - 1, k * n / max(1, steps))]
    }
}

/// One step's report (`--json` prints it as a line).
public struct StepReport: Sendable {
    public var step: Int
    public var loss: Float
    public var tokens: Int
    public var supervisedTokens: Int
    public var lr: Double
    public var gradNorm: Double
    public var seconds: Double
    public var skipped: Int

    public var json: String {
        "{\"step\":\(step),\"loss\":\(loss.isFinite ? "\(loss)" : "null"),\"tokens\":\(tokens),"
            + "\"supervised_tokens\":\(supervisedTokens),\"lr\":\(lr),\"grad_norm\":\(gradNorm),"
            + "\"seconds\":\(cFormat("%.4f", seconds))}"
    }
}

public enum TrainError: Error, CustomStringConvertible {
    case nonFiniteLoss(step: Int, saved: String?)
    case badResume(folder: String, reason: String)
    case badOption(String)

    public var description: String {
        switch self {
        case let .nonFiniteLoss(s, saved):
            return "step \(s): the loss is not finite; stopped"
                + (saved.map { " (the last good checkpoint is \($0))" } ?? " (no checkpoint was saved yet)")
        case let .badResume(f, r): return "\(f): cannot resume: \(r)"
        case let .badOption(s): return s
        }
    }
}

/// A training run over `samples`.
public struct Trainer {
    public var model: TrainingModel
    public var optimizer: AdamW
    public var options: TrainOptions
    public let samples: [TrainingSample]
    public let encoder: SampleEncoder
    public let dataFile: String
    /// Steps done so far.
    public var step = 0
    /// The order samples are drawn in (a seeded shuffle per pass over the file, or file order).
    let order: [Int]

    public init(
        model: TrainingModel, samples: [TrainingSample], encoder: SampleEncoder, dataFile: String,
        options: TrainOptions
    ) {
        self.model = model; self.samples = samples; self.encoder = encoder; self.dataFile = dataFile
        self.options = options
        optimizer = AdamW(lr: options.lr, betas: options.betas, eps: options.eps, weightDecay: options.weightDecay)
        var order = [Int]()
        let passes = (options.steps * options.batchSamples) / max(1, samples.count) + 1
        var rng = SplitMix64(seed: options.seed)
        for _ in 0..<passes {
            var pass = Array(samples.indices)
            if options.shuffle { // Fisher–Yates with SplitMix64
                for i in stride(from: pass.count - 1, to: 0, by: -1) { pass.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            }
            order += pass
        }
        self.order = order
    }

    /// Runs one step (the next B samples); returns its report and the gradients before clipping.
    public mutating func runStep() throws -> (StepReport, Gradients) {
        let start = ContinuousClock.now
        let k = step, B = options.batchSamples
        var picked = [EncodedSample](), skipped = 0
        var cursor = k * B
        let context = options.context(step: k)
        // Bad samples are errors, or (skipBad) replaced by the next ones: the cursor runs on, so the data order of
        // a resumed run is the same function of the step.
        var candidates = [TrainingSample]()
        while candidates.count < B && cursor < order.count {
            candidates.append(samples[order[cursor]]); cursor += 1
        }
        do {
            picked = try encodeFitted(candidates, encoder: encoder, context: context, file: dataFile)
        } catch let e as TrainingDataError where options.skipBad {
            _ = e
            for s in candidates { // one at a time: keep those that fit alone, in order, within the context
                guard let one = try? encodeFitted([s], encoder: encoder, context: context, file: dataFile),
                    one[0].supervised.contains(true)
                else { skipped += 1; continue }
                if picked.reduce(0, { $0 + $1.ids.count }) + one[0].ids.count <= context {
                    picked.append(one[0])
                } else {
                    skipped += 1
                }
            }
        }
        for (i, s) in picked.enumerated() where !s.supervised.contains(true) {
            if options.skipBad { skipped += 1; continue }
            throw TrainingDataError.nothingSupervised(
                file: dataFile, line: candidates[min(i, candidates.count - 1)].line)
        }
        picked = picked.filter { $0.supervised.contains(true) }
        guard !picked.isEmpty else { throw TrainError.badOption("step \(k): no usable sample left in the batch") }
        let batch = pack(picked)
        var r = model.lossAndGradients(batch, train: options.train)
        let norm = clipByGlobalNorm(&r.gradients, clip: options.clip)
        let lr = options.schedule.lr(step: k, of: options.steps, base: options.lr, warmup: options.warmup)
        let grads = r.gradients
        if r.loss.isFinite && norm.isFinite {
            optimizer.step(&model.values, grads: r.gradients, lr: lr)
        }
        step += 1
        let d = start.duration(to: .now)
        let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        return (
            StepReport(
                step: k, loss: r.loss, tokens: batch.ids.count, supervisedTokens: batch.supervised, lr: lr,
                gradNorm: norm, seconds: seconds, skipped: skipped), grads
        )
    }

    // MARK: - checkpoints

    /// Writes the run to `folder` atomically (see the file's header). `dtype`: .f32 or .bf16 for the weights.
    public func save(to folder: String, source: String, dtype: DType = .f32) throws {
        let fm = FileManager.default
        let partial = folder + ".partial-\(getpid())"
        try? fm.removeItem(atPath: partial)
        try fm.createDirectory(atPath: partial, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: source)
        where !name.hasSuffix(".safetensors") && name != "model.safetensors.index.json"
            && !name.hasPrefix("trainer_state")
        {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: source + "/" + name, isDirectory: &isDir), !isDir.boolValue {
                try fm.copyItem(atPath: source + "/" + name, toPath: partial + "/" + name)
            }
        }
        var w = SafeTensorsWriter()
        for key in model.values.keys.sorted() { w.add(key, model.values[key]!, as: dtype) }
        try Data(w.serialized()).write(to: URL(fileURLWithPath: partial + "/model.safetensors"))
        var o = SafeTensorsWriter()
        for key in optimizer.m.keys.sorted() {
            o.add("m." + key, optimizer.m[key]!); o.add("v." + key, optimizer.v[key]!)
        }
        o.metadata["steps"] = String(
            decoding: try JSONSerialization.data(withJSONObject: optimizer.steps, options: [.sortedKeys]), as: UTF8.self
        )
        try Data(o.serialized()).write(to: URL(fileURLWithPath: partial + "/optimizer.safetensors"))
        let state: [String: Any] = [
            "step": step, "seed": Int(options.seed), "shuffle": options.shuffle, "batch_samples": options.batchSamples,
            "steps": options.steps, "data": dataFile, "weights_dtype": dtype.rawValue
        ]
        try JSONSerialization.data(withJSONObject: state, options: [.sortedKeys, .prettyPrinted])
            .write(to: URL(fileURLWithPath: partial + "/trainer_state.json"))
        let aside = folder + ".previous-\(getpid())"
        let existed = fm.fileExists(atPath: folder)
        if existed { try fm.moveItem(atPath: folder, toPath: aside) }
        try fm.moveItem(atPath: partial, toPath: folder)
        if existed { try? fm.removeItem(atPath: aside) }
    }

    /// Restores the optimizer and the step from a folder `save` wrote (the weights are the folder's checkpoint).
    public mutating func restore(from folder: String) throws {
        let statePath = folder + "/trainer_state.json"
        guard let d = FileManager.default.contents(atPath: statePath),
            let state = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any], let s = state["step"] as? Int
        else { throw TrainError.badResume(folder: folder, reason: "no readable trainer_state.json") }
        guard (state["weights_dtype"] as? String ?? "F32") == DType.f32.rawValue else {
            throw TrainError.badResume(
                folder: folder, reason: "the weights were saved in bf16; resume needs --save-dtype f32")
        }
        let f = try SafeTensorsFile(path: folder + "/optimizer.safetensors")
        var m = [String: Tensor](), v = [String: Tensor]()
        for name in f.names {
            if name.hasPrefix("m.") { m[String(name.dropFirst(2))] = try f.tensor(name) }
            if name.hasPrefix("v.") { v[String(name.dropFirst(2))] = try f.tensor(name) }
        }
        let steps =
            (try? JSONSerialization.jsonObject(with: Data((f.metadata["steps"] ?? "{}").utf8))) as? [String: Int]
        optimizer.m = m; optimizer.v = v; optimizer.steps = steps ?? [:]
        step = s
    }

    /// `gradients` keyed by checkpoint names, as a safetensors file (`--dump-gradients`).
    public static func dump(_ gradients: Gradients, to path: String) throws {
        var w = SafeTensorsWriter()
        for key in gradients.keys.sorted() { w.add(key, gradients[key]!) }
        try Data(w.serialized()).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

extension TrainingModel {
    /// Every parameter re-initialised from `seed` (training from scratch): matrices (and the position table)
    /// ~ N(0, std²) with std = the text config's initializer range (0.02), biases 0, norm weights 1.
    public mutating func reinitialize(seed: UInt64, std: Float = 0.02) {
        var rng = SplitMix64(seed: seed)
        for key in values.keys.sorted() {
            let t = values[key]!
            let isNorm = key.contains("norm") || key.hasSuffix("mlp1.0.weight") || key.hasSuffix("mlp1.0.bias")
            if key.hasSuffix(".bias") {
                values[key] = Tensor(shape: t.shape)
            } else if isNorm {
                values[key] = Tensor(shape: t.shape, repeating: 1)
            } else {
                values[key] = Tensor(shape: t.shape) { _ in
                    // Box–Muller from two uniform draws in (0, 1]
                    let u1 = max(Float(rng.next() >> 40) / 16_777_216, 1e-7), u2 = Float(rng.next() >> 40) / 16_777_216
                    return std * (-2 * log(u1)).squareRoot() * cos(2 * Float.pi * u2)
                }
            }
        }
    }
}
