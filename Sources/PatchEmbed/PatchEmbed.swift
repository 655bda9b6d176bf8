// PatchEmbed: how a tile of pixels becomes a sequence of tokens (docs/spec.md §3.3).
//
// What it is: transformers' `SiglipVisionEmbeddings` (fixed resolution, what Eagle 2.5 runs) — a Conv2d
// whose kernel equals its stride equals the patch size P, with bias, followed by a learned position
// table added in row-major patch order (token = row·W + col, no CLS token) — and the SigLIP2 NaFlex form
// `Siglip2VisionEmbeddings` (NaFlex.swift): a linear layer over pre-cut patches plus the position table
// resized to each image's patch grid.
// The convolution is written twice: `naive` (the seven-deep loop of the definition) and the fast form
// (im2col: copy each patch into one row, then one sgemm against the flattened kernel), tested against
// each other on odd shapes and both against PyTorch.
// What it is not: image loading, resizing or normalisation (the Imaging and Tiler modules), and the
// bicubic `interpolate_pos_encoding` of SigLIP, which Eagle never enables.
import Tensor

/// A dense layer with bias, PyTorch `nn.Linear`: y = x·Wᵀ + b, weight (C_out, C_in), bias (C_out).
public struct SiglipLinear: Sendable {
    public var weight: Tensor
    public var bias: Tensor

    public init(weight: Tensor, bias: Tensor) {
        precondition(
            weight.rank == 2 && bias.shape == [weight.shape[0]],
            "SiglipLinear: weight \(weight.shape) and bias \(bias.shape) disagree")
        self.weight = weight
        self.bias = bias
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    /// x (…, C_in) → (…, C_out) through sgemm.
    public func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias) }
    /// The same through the triple loop.
    public func naive(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias, compute: .reference) }
}

/// `nn.Conv2d(C_in, C, kernel_size: P, stride: P, padding: "valid")` with bias: the SigLIP patch embedding.
///
/// out[c, i, j] = bias[c] + Σ_{ci, ky, kx} weight[c, ci, ky, kx] · pixels[ci, i·P + ky, j·P + kx],
/// for a pixel tensor (C_in, H_px, W_px) and a (H, W) = (H_px / P, W_px / P) patch grid. The result is
/// returned as tokens (T, C) with T = H·W in row-major order (`flatten(2).transpose(1, 2)` in PyTorch).
/// Pixels beyond the last whole patch are ignored, as a "valid" convolution does.
public struct PatchConv2d: Sendable {
    /// (C, C_in, P, P)
    public var weight: Tensor
    /// (C)
    public var bias: Tensor

    public init(weight: Tensor, bias: Tensor) {
        precondition(
            weight.rank == 4 && weight.shape[2] == weight.shape[3] && bias.shape == [weight.shape[0]],
            "PatchConv2d: weight \(weight.shape) must be (C, C_in, P, P) and bias (C), got bias \(bias.shape)")
        self.weight = weight
        self.bias = bias
    }

    public var outChannels: Int { weight.shape[0] }
    public var inChannels: Int { weight.shape[1] }
    public var patchSize: Int { weight.shape[2] }

    /// The patch grid (H, W) for an image of `height` × `width` pixels.
    public func grid(height: Int, width: Int) -> (Int, Int) { (height / patchSize, width / patchSize) }

    private func checkInput(_ pixels: Tensor) -> (Int, Int) {
        precondition(
            pixels.rank == 3 && pixels.shape[0] == inChannels,
            "PatchConv2d: pixels must be (\(inChannels), H, W), got \(pixels.shape)")
        return grid(height: pixels.shape[1], width: pixels.shape[2])
    }

    /// Direct convolution, straight from the definition. pixels (C_in, H_px, W_px) → (T, C).
    public func naive(_ pixels: Tensor) -> Tensor {
        let (gh, gw) = checkInput(pixels)
        let p = patchSize, cin = inChannels, c = outChannels
        let hpx = pixels.shape[1], wpx = pixels.shape[2]
        var out = Tensor(shape: [gh * gw, c])
        for i in 0..<gh {
            for j in 0..<gw {
                for o in 0..<c {
                    var acc = bias.storage[o]
                    for ci in 0..<cin {
                        for ky in 0..<p {
                            for kx in 0..<p {
                                let w = weight.storage[((o * cin + ci) * p + ky) * p + kx]
                                let x = pixels.storage[(ci * hpx + i * p + ky) * wpx + j * p + kx]
                                acc += w * x
                            }
                        }
                    }
                    out[flat: (i * gw + j) * c + o] = acc
                }
            }
        }
        return out
    }

    /// im2col: each patch copied into one row of length C_in·P·P, ordered (ci, ky, kx) like the kernel.
    /// pixels (C_in, H_px, W_px) → (T, C_in·P·P).
    public func im2col(_ pixels: Tensor) -> Tensor {
        let (gh, gw) = checkInput(pixels)
        let p = patchSize, cin = inChannels
        let hpx = pixels.shape[1], wpx = pixels.shape[2]
        let k = cin * p * p
        var cols = [Float](repeating: 0, count: gh * gw * k)
        pixels.storage.withUnsafeBufferPointer { src in
            cols.withUnsafeMutableBufferPointer { dst in
                for i in 0..<gh {
                    for j in 0..<gw {
                        let row = (i * gw + j) * k
                        for ci in 0..<cin {
                            for ky in 0..<p {
                                let s = (ci * hpx + i * p + ky) * wpx + j * p
                                let d = row + (ci * p + ky) * p
                                for kx in 0..<p { dst[d + kx] = src[s + kx] }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [gh * gw, k], storage: cols)
    }

    /// Fast form: conv = matmul. im2col(pixels) (T, C_in·P·P) · weight.reshaped(C, C_in·P·P)ᵀ + bias → (T, C).
    public func callAsFunction(_ pixels: Tensor) -> Tensor {
        linear(im2col(pixels), weight: weight.reshaped([outChannels, -1]), bias: bias)
    }
}

/// `SiglipVisionEmbeddings`: patch embedding plus the learned position table, no CLS token.
///
/// embeddings[t] = conv(pixels)[t] + position_embedding[t], t = row·W + col, T = H·W tokens of width C.
/// The table has exactly T rows: Eagle 2.5 feeds 448 px tiles to a patch-14 tower (32×32 = 1024
/// positions), or 512 px to a patch-16 one (also 1024).
public struct SiglipVisionEmbeddings: Sendable {
    public var patchEmbedding: PatchConv2d
    /// (T, C)
    public var positionEmbedding: Tensor

    public init(patchEmbedding: PatchConv2d, positionEmbedding: Tensor) {
        precondition(
            positionEmbedding.rank == 2 && positionEmbedding.shape[1] == patchEmbedding.outChannels,
            "SiglipVisionEmbeddings: position table \(positionEmbedding.shape) does not match width \(patchEmbedding.outChannels)"
        )
        self.patchEmbedding = patchEmbedding
        self.positionEmbedding = positionEmbedding
    }

    /// pixels (C_in, H_px, W_px) → (T, C). Traps if the patch grid does not have exactly as many
    /// patches as the position table (the caller, the tiler, guarantees the tile size).
    /// `.reference` runs the direct convolution (`naive`), `.fast` im2col + sgemm.
    public func callAsFunction(_ pixels: Tensor, compute: Compute = .fast) -> Tensor {
        if !compute.isReference { BLAS.use(threads: compute.threads) }
        let tokens = compute.isReference ? patchEmbedding.naive(pixels) : patchEmbedding(pixels)
        precondition(
            tokens.shape == positionEmbedding.shape,
            "SiglipVisionEmbeddings: \(tokens.shape[0]) patches but \(positionEmbedding.shape[0]) positions; the image size must match the config"
        )
        return tokens + positionEmbedding
    }
}
