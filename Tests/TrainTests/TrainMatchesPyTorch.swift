// Training against PyTorch autograd (Fixtures/train-tiny-random, written by Fixtures/generate/train_reference.py):
// for each case — one text sample, three packed samples with an image (cosine schedule, clipping), the same on an
// untied head, two packed samples with an image each — the step-0 loss and every parameter's gradient, then the
// losses, gradient norms and learning rates of 10 AdamW steps and every parameter after them.
import Foundation
import SafeTensors
import Tensor
import Testing
import Train
import _TestSupport

@Suite(.serialized) struct TrainMatchesPyTorch {
    static func fixture() throws -> Fixture { try Fixture.load("train-tiny-random") }

    struct Case {
        var name: String
        var config: [String: Any]
        var batch: PackedBatch
        var model: TrainingModel
    }

    static func load(_ name: String) throws -> Case {
        let f = try fixture()
        let cases = try #require(f.manifest["cases"] as? [String: Any])
        let c = try #require(cases[name] as? [String: Any])
        let ints = { (k: String) in try f.file.integers("\(name).\(k)").values.map { Int($0) } }
        let pv = f.file.info("\(name).pixel_values") != nil ? try f.tensor("\(name).pixel_values") : nil
        let batch = PackedBatch(
            ids: try ints("input_ids"), positions: try ints("position_ids"), boundaries: try ints("cu_seqlens"),
            labels: try ints("labels"), pixelValues: pv)
        let dir = "\(repositoryRoot)/\(c["checkpoint"] as? String ?? "Fixtures/tiny-random")"
        return Case(name: name, config: c, batch: batch, model: try TrainingModel(directory: dir))
    }

    static let names = ["text", "packed", "untied", "images"]

    /// Both attention paths: every segment held whole (the default), and the blockwise kernels (wholeSegmentRows 0).
    @Test(arguments: names, [SegmentAttentionPath.whole, .blockwise])
    func stepZeroGradientsEqualAutograd(name: String, attention: SegmentAttentionPath) throws {
        let c = try TrainMatchesPyTorch.load(name), f = try TrainMatchesPyTorch.fixture()
        var model = c.model
        if attention == .blockwise { model.wholeSegmentRows = 0 }
        let r = model.lossAndGradients(c.batch)
        let losses = try #require(c.config["losses"] as? [Double])
        assertClose(
            Tensor(shape: [1], storage: [r.loss]), Tensor(shape: [1], storage: [Float(losses[0])]), .fp32Op,
            "\(name) loss")
        let expected = f.file.names.filter { $0.hasPrefix("\(name).grad.") }
        #expect(!expected.isEmpty)
        // A gradient that is zero in exact arithmetic (SigLIP's k_proj bias: softmax ignores a constant added to
        // every score) comes out of both sides as rounding noise; below 1e-9 of the case's largest gradient a
        // tensor is compared as zero.
        let largest = try expected.map { try f.tensor($0).storage.map(abs).max() ?? 0 }.max() ?? 0
        for key in expected {
            let param = String(key.dropFirst("\(name).grad.".count))
            let want = try f.tensor(key)
            guard let got = r.gradients[param] else {
                // PyTorch stores zeros for a parameter that got no gradient (the tower in a step without images).
                #expect(want.storage.allSatisfy { $0 == 0 }, "\(name): no gradient for \(param)")
                continue
            }
            assertCloseAtUnitScale(got, want, "\(name) d\(param)", zeroBelow: 1e-9 * largest)
        }
    }

    @Test(arguments: names)
    func tenAdamWStepsEqualPyTorch(name: String) throws {
        var c = try TrainMatchesPyTorch.load(name)
        let f = try TrainMatchesPyTorch.fixture()
        let cfg = c.config
        let K = cfg["steps"] as? Int ?? 10, base = cfg["lr"] as? Double ?? 1e-3
        let betas = cfg["betas"] as? [Double] ?? [0.9, 0.95]
        var opt = AdamW(
            lr: base, betas: (betas[0], betas[1]), eps: cfg["eps"] as? Double ?? 1e-8,
            weightDecay: cfg["weight_decay"] as? Double ?? 0)
        let schedule = LRSchedule(rawValue: cfg["schedule"] as? String ?? "constant") ?? .constant
        let warmup = cfg["warmup"] as? Int ?? 0, clip = cfg["clip"] as? Double
        var losses = [Float](), norms = [Float](), lrs = [Float]()
        for k in 0..<K {
            var r = c.model.lossAndGradients(c.batch)
            let norm = clipByGlobalNorm(&r.gradients, clip: clip)
            let lr = schedule.lr(step: k, of: K, base: base, warmup: warmup)
            opt.step(&c.model.values, grads: r.gradients, lr: lr)
            losses.append(r.loss); norms.append(Float(norm)); lrs.append(Float(lr))
        }
        let want = { (k: String) in (cfg[k] as? [Double] ?? []).map(Float.init) }
        assertClose(
            Tensor(shape: [K], storage: losses), Tensor(shape: [K], storage: want("losses")), .fp32Op, "\(name) losses")
        assertClose(
            Tensor(shape: [K], storage: norms), Tensor(shape: [K], storage: want("grad_norms")), .fp32Block,
            "\(name) norms")
        assertClose(Tensor(shape: [K], storage: lrs), Tensor(shape: [K], storage: want("lrs")), .exact, "\(name) lrs")
        // Parameters after 10 steps at their own scale. Those whose gradient is zero in exact arithmetic (the
        // stepZero test's rule) are left out: Adam normalises their rounding noise into updates of ±lr.
        let grads = f.file.names.filter { $0.hasPrefix("\(name).grad.") }
        let largest = try grads.map { try f.tensor($0).storage.map(abs).max() ?? 0 }.max() ?? 0
        for key in f.file.names where key.hasPrefix("\(name).after.") {
            let param = String(key.dropFirst("\(name).after.".count))
            let g = try f.tensor("\(name).grad.\(param)")
            if let m = g.storage.map(abs).max(), m > 0, m <= 1e-9 * largest { continue }
            assertClose(
                try #require(c.model.values[param]), try f.tensor(key), .fp32Block, "\(name) \(param) after \(K) steps")
        }
    }
}

/// Compares gradients (or updates) whose scale is arbitrary — the tiny tower's are ~1e-5 — at unit scale: both
/// divided by the reference's largest magnitude, then the `fp32-block` row, i.e. a normwise relative error of 1e-4
/// (docs/tolerances.md's definition of "relative").
enum SegmentAttentionPath: String, CustomTestStringConvertible, Sendable {
    case whole, blockwise
    var testDescription: String { rawValue }
}

func assertCloseAtUnitScale(_ a: Tensor, _ b: Tensor, _ what: String, zeroBelow: Float = 0) {
    let s = b.storage.map(abs).max() ?? 0
    guard s > zeroBelow else {
        #expect((a.storage.map(abs).max() ?? 0) <= max(zeroBelow, 0), "\(what): expected zeros")
        return
    }
    assertClose(a.map { $0 / s }, b.map { $0 / s }, .fp32Block, what)
}
