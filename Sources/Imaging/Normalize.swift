// From 8-bit pixels to what the vision tower reads: rescale by 1/255, normalise with mean = std = 0.5
// (SigLIP's constants, docs/spec.md §1.5), planar channels.
//
//     x[c, y, x] = (p(x, y, c) · (1/255) − mean_c) / std_c        shape (3, H, W), values in [−1, 1]
//
// What it is not: the tiling (module Tiler) or any resizing (Resize.swift).
import Tensor

/// Per-channel normalisation constants.
public struct Normalization: Equatable, Sendable {
    public var mean: [Float]
    public var std: [Float]
    public var rescale: Double
    public init(mean: [Float], std: [Float], rescale: Double = 1.0 / 255.0) {
        precondition(mean.count == 3 && std.count == 3, "Normalization: three channels")
        self.mean = mean; self.std = std; self.rescale = rescale
    }
    /// SigLIP / Eagle 2.5: mean = std = (0.5, 0.5, 0.5), rescale 1/255.
    public static let siglip = Normalization(mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
}

extension RGBImage {
    /// The planar float tensor (3, H, W): `(p · rescale − mean) / std` per channel.
    public func normalized(_ n: Normalization = .siglip) -> Tensor {
        let hw = width * height
        var out = [Float](repeating: 0, count: 3 * hw)
        // 256-entry lookup per channel: the same arithmetic for every pixel, done once per level.
        let table: [[Float]] = (0..<3).map { c in
            (0..<256).map { v in (Float(Double(v) * n.rescale) - n.mean[c]) / n.std[c] }
        }
        pixels.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                for c in 0..<3 {
                    let t = table[c]
                    for i in 0..<hw { o[c * hw + i] = t[Int(p[i * 3 + c])] }
                }
            }
        }
        return Tensor(shape: [3, height, width], storage: out)
    }
}
