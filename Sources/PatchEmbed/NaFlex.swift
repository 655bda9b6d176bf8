// NaFlex: the SigLIP2 embedding that serves any resolution (docs/spec.md §3.3, last bullet).
//
// What it is: transformers' `Siglip2VisionEmbeddings` — a linear layer over pre-cut patches
// (each a flat vector of C_in·P·P pixels, in whatever order the image processor wrote them) plus the
// learned S×S position table resized to the image's own (h, w) patch grid with
// `F.interpolate(mode: "bilinear", align_corners: false, antialias: true)`, written out here as two
// 1-D resampling matrices (rows, then columns).
// What it is not: the processor that cuts and pads patches, or the attention mask over padded
// positions; callers pass only an image's h·w valid patches. Eagle 2.5 itself does not use NaFlex
// (it runs `SiglipVisionModel` on fixed 448 px tiles); the same encoder blocks serve both.
import Tensor

/// Weights of antialiased linear resampling from `inSize` samples to `outSize` samples, as PyTorch's
/// `_upsample_bilinear2d_aa` computes them along one axis (align_corners = false). Row i of the result
/// (outSize × inSize) holds the weights of output i:
///
///     scale   = inSize / outSize
///     support = max(scale, 1)                  (the triangle filter widens when shrinking: antialiasing)
///     center  = scale · (i + ½)
///     j ∈ [max(⌊center − support + ½⌋, 0), min(⌊center + support + ½⌋, inSize))
///     w_ij    = max(0, 1 − |j + ½ − center| / support), then each row normalised to sum 1.
///
/// When enlarging (scale < 1) this is ordinary bilinear interpolation with half-pixel centres.
public func antialiasedLinearWeights(inSize: Int, outSize: Int) -> [[Double]] {
    precondition(inSize > 0 && outSize > 0, "antialiasedLinearWeights: sizes must be positive")
    let scale = Double(inSize) / Double(outSize)
    let support = max(scale, 1)
    var rows = [[Double]]()
    rows.reserveCapacity(outSize)
    for i in 0..<outSize {
        let center = scale * (Double(i) + 0.5)
        let lo = max(Int(center - support + 0.5), 0)
        let hi = min(Int(center + support + 0.5), inSize)
        var w = [Double](repeating: 0, count: inSize)
        var total = 0.0
        if lo < hi {
            for j in lo..<hi {
                let v = max(0, 1 - abs(Double(j) + 0.5 - center) / support)
                w[j] = v
                total += v
            }
        }
        if total > 0 { for j in 0..<inSize { w[j] /= total } }
        rows.append(w)
    }
    return rows
}

/// Resizes a position table (S_h, S_w, C) to (h, w, C) with bilinear antialiased interpolation and
/// returns it flattened row-major as (h·w, C):
/// out[y, x] = Σ_{r, s} R[y, r] · Cw[x, s] · table[r, s], R and Cw from `antialiasedLinearWeights`.
public func resizePositionTable(_ table: Tensor, height h: Int, width w: Int) -> Tensor {
    precondition(table.rank == 3, "resizePositionTable: table must be (S_h, S_w, C), got \(table.shape)")
    let sh = table.shape[0], sw = table.shape[1], c = table.shape[2]
    let rw = antialiasedLinearWeights(inSize: sh, outSize: h)
    let cw = antialiasedLinearWeights(inSize: sw, outSize: w)
    // Columns first: (S_h, S_w, C) → (S_h, w, C), then rows: → (h, w, C).
    var mid = [Double](repeating: 0, count: sh * w * c)
    for r in 0..<sh {
        for x in 0..<w {
            for s in 0..<sw where cw[x][s] != 0 {
                let weight = cw[x][s]
                let src = (r * sw + s) * c, dst = (r * w + x) * c
                for k in 0..<c { mid[dst + k] += weight * Double(table.storage[src + k]) }
            }
        }
    }
    var out = [Double](repeating: 0, count: h * w * c)
    for y in 0..<h {
        for r in 0..<sh where rw[y][r] != 0 {
            let weight = rw[y][r]
            for x in 0..<w {
                let src = (r * w + x) * c, dst = (y * w + x) * c
                for k in 0..<c { out[dst + k] += weight * mid[src + k] }
            }
        }
    }
    return Tensor(shape: [h * w, c], storage: out.map { Float($0) })
}

/// `Siglip2VisionEmbeddings` (NaFlex): embeddings = patch_embedding(patches) + resize(position table).
///
/// patches (h·w, C_in·P·P) of one image whose patch grid is (h, w), row-major → (h·w, C). The table
/// has S² rows (S = √num_patches) and is viewed as (S, S, C) before resizing.
public struct Siglip2VisionEmbeddings: Sendable {
    public var patchEmbedding: SiglipLinear
    /// (S², C)
    public var positionEmbedding: Tensor

    public init(patchEmbedding: SiglipLinear, positionEmbedding: Tensor) {
        let s = Int(Double(positionEmbedding.shape[0]).squareRoot())
        precondition(
            positionEmbedding.rank == 2 && s * s == positionEmbedding.shape[0]
                && positionEmbedding.shape[1] == patchEmbedding.outFeatures,
            "Siglip2VisionEmbeddings: position table \(positionEmbedding.shape) must be (S², \(patchEmbedding.outFeatures))"
        )
        self.patchEmbedding = patchEmbedding
        self.positionEmbedding = positionEmbedding
    }

    /// S, the side of the square position table.
    public var tableSide: Int { Int(Double(positionEmbedding.shape[0]).squareRoot()) }

    /// The position table resized to an (h, w) patch grid: (h·w, C).
    public func positions(height h: Int, width w: Int) -> Tensor {
        let s = tableSide
        return resizePositionTable(positionEmbedding.reshaped([s, s, -1]), height: h, width: w)
    }

    /// patches (h·w, C_in·P·P) → (h·w, C).
    public func callAsFunction(_ patches: Tensor, height h: Int, width w: Int) -> Tensor {
        precondition(
            patches.rank == 2 && patches.shape[0] == h * w,
            "Siglip2VisionEmbeddings: \(patches.shape) is not \(h)·\(w) patches")
        return patchEmbedding(patches) + positions(height: h, width: w)
    }
}
