// eaglet-bench train: training step time, Eaglet against PyTorch on the same steps in the same run
// (Fixtures/generate/bench_train_torch.py). The samples of each step are encoded and packed once by Eaglet and
// written to a file both sides read; Eaglet times forward + backward + clipping + AdamW on its packed sequence,
// PyTorch the same samples as one padded batch (how PyTorch users, and tiny_eagle.py, train). Same model, same
// samples, same supervised tokens, same optimizer; the median of the steps after the first.
import ArgumentParser
import Eaglet
import Foundation
import _Essentials

struct TrainBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training step time on tiny-eagle's task: Eaglet's packed steps vs PyTorch's padded batches.")

    @Option(help: "Checkpoint folder.") var model: String = "Fixtures/tiny-eagle"
    @Option(help: "JSONL (python3 Fixtures/generate/tiny_eagle.py jsonl DIR 2000).") var data: String
    @Option(help: "Steps timed (the first is a warm-up).") var steps: Int = 8
    @Option(help: "Samples per step.") var batchSamples: Int = 48
    @Option(help: "Threads on both sides.") var threads: Int = 2
    @Flag(help: "Skip PyTorch.") var noTorch = false

    func run() throws {
        reuseFreedTensorMemory(keep: 2 << 30) // as `eaglet train`: each step frees and reallocates its whole tape
        BLAS.setThreads(threads)
        print(machineDescription(blasCore: BLAS.coreName))
        print("CPU vector extensions: \(cpuVectorExtensions())")
        var m = try TrainingModel(directory: model)
        let samples = try readTrainingSamples(data)
        let encoder = SampleEncoder(
            tokenizer: try Tokenizer(tokenizerJSON: model + "/tokenizer.json"), tiling: m.config.tiling,
            tokensPerTile: m.config.tokensPerTile)
        var batches = [PackedBatch]()
        var w = SafeTensorsWriter()
        for k in 0..<steps {
            let chunk = Array(samples[(k * batchSamples) % samples.count..<min(samples.count, (k + 1) * batchSamples)])
            let b = pack(try encodeFitted(chunk, encoder: encoder, context: 1 << 20, file: data))
            batches.append(b)
            w.add("\(k).ids", integers: b.ids.map(Int64.init), shape: [b.ids.count])
            w.add("\(k).labels", integers: b.labels.map(Int64.init), shape: [b.labels.count])
            w.add("\(k).cu_seqlens", integers: b.boundaries.map(Int64.init), shape: [b.boundaries.count])
            if let p = b.pixelValues { w.add("\(k).pixel_values", p) }
        }
        let path = NSTemporaryDirectory() + "eaglet-train-bench-\(getpid()).safetensors"
        try Data(w.serialized()).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var opt = AdamW(lr: 1e-3, betas: (0.9, 0.98), eps: 1e-8, weightDecay: 0.01)
        var times = [Double]()
        for b in batches {
            let t0 = now()
            var r = m.lossAndGradients(b)
            _ = clipByGlobalNorm(&r.gradients, clip: nil)
            opt.step(&m.values, grads: r.gradients, lr: 1e-3)
            times.append(now() - t0)
        }
        let timed = Array(times.dropFirst()).sorted()
        let eaglet = timed[timed.count / 2]
        let tokens = batches.map(\.ids.count).reduce(0, +) / batches.count
        print(
            cFormat(
                "%d steps of %d samples (%d tokens packed on average), %d threads", steps, batchSamples, tokens, threads
            ))
        print(cFormat("Eaglet:  median step %.3f s", eaglet))
        guard !noTorch,
            let script = torchScript("bench_train_torch.py"),
            let out = runProcess(
                "/usr/bin/env",
                [
                    "python3", script, "--model", model, "--batches", path, "--steps", "\(steps)", "--threads",
                    "\(threads)"
                ]),
            let line = out.split(separator: "\n").last,
            let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let torch = obj["median_step_seconds"] as? Double
        else { return }
        print("PyTorch \(obj["torch"] as? String ?? ""): " + cFormat("median step %.3f s", torch))
        print(cFormat("Eaglet / PyTorch speed: %.2f×", torch / eaglet))
    }
}
