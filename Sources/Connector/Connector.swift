// The connector between the vision tower and the language model (docs/spec.md §4): pixel shuffle, then `mlp1`.
//
// What it is:
//   * pixel shuffle (ratio 0.5, InternVL's "v2" order): ViT tokens (N, R·W, C) on an R×W patch grid
//     become (N, R/2·W/2, 4C): output token (i, j) concatenates the 2×2 block
//         x[2i, 2j], x[2i, 2j+1], x[2i+1, 2j], x[2i+1, 2j+1]
//     (row offset major, column offset minor), tokens row-major over the (R/2)×(W/2) grid. A 32×32 grid
//     of 1152-channel patches becomes 256 tokens of 4608 channels. An odd grid is an error, not a crop.
//   * `mlp1` = LayerNorm(4C, eps 1e-5) → Linear(4C → C_llm) → GELU (exact erf) → Linear(C_llm → C_llm),
//     checkpoint keys mlp1.0 (LayerNorm), mlp1.1, mlp1.3 (index 2 is the parameter-free GELU).
// `pixelShuffleNaive` is the reference's literal view/permute sequence; `pixelShuffle` writes each output
// block directly from the index formula.
// What it is not: the one-layer connector variants (`mlp_connector_layers` = 1) or other ratios.
import SafeTensors
import Tensor

/// Why the connector refused its input or its weights.
public enum ConnectorError: Error, Equatable, CustomStringConvertible, Sendable {
    case oddPatchGrid(rows: Int, columns: Int)
    case notAGrid(tokens: Int, rows: Int, columns: Int)
    case notSquare(tokens: Int)

    public var description: String {
        switch self {
        case let .oddPatchGrid(r, c):
            return "pixel shuffle needs an even patch grid to merge 2×2 blocks, got \(r)×\(c) patches"
        case let .notAGrid(t, r, c): return "pixel shuffle: \(t) tokens do not form a \(r)×\(c) patch grid"
        case let .notSquare(t): return "pixel shuffle: \(t) tokens are not a square patch grid; pass rows and columns"
        }
    }
}

/// The patch grid of `x` (N, T, C): `rows`×`columns` if given, else the square √T × √T.
func patchGrid(_ x: Tensor, rows: Int?, columns: Int?) throws -> (Int, Int) {
    precondition(x.rank == 3, "pixelShuffle: need (N, T, C), got \(x.shape)")
    let t = x.shape[1]
    let r: Int, c: Int
    if let rows, let columns {
        r = rows; c = columns
    } else {
        let s = Int(Double(t).squareRoot().rounded())
        guard s * s == t else { throw ConnectorError.notSquare(tokens: t) }
        r = s; c = s
    }
    guard r * c == t else { throw ConnectorError.notAGrid(tokens: t, rows: r, columns: c) }
    guard r % 2 == 0 && c % 2 == 0 else { throw ConnectorError.oddPatchGrid(rows: r, columns: c) }
    return (r, c)
}

/// Pixel shuffle, ratio 0.5, by the reference's view/permute sequence: (N, R, W, C) → view
/// (N, R, W/2, 2C) → permute(0, 2, 1, 3) → view (N, W/2, R/2, 4C) → permute(0, 2, 1, 3) → (N, R/2·W/2, 4C).
public func pixelShuffleNaive(_ x: Tensor, rows: Int? = nil, columns: Int? = nil) throws -> Tensor {
    let (r, w) = try patchGrid(x, rows: rows, columns: columns)
    let n = x.shape[0], c = x.shape[2]
    let a = x.reshaped([n, r, w / 2, 2 * c]).permuted([0, 2, 1, 3])
    let b = a.reshaped([n, w / 2, r / 2, 4 * c]).permuted([0, 2, 1, 3])
    return b.reshaped([n, (r / 2) * (w / 2), 4 * c])
}

/// Pixel shuffle, ratio 0.5, direct: out[n, i·W/2 + j] = concat(x[2i, 2j], x[2i, 2j+1], x[2i+1, 2j], x[2i+1, 2j+1]).
/// Shapes: (N, R·W, C) → (N, R/2·W/2, 4C); `rows`/`columns` default to the square grid.
public func pixelShuffle(_ x: Tensor, rows: Int? = nil, columns: Int? = nil) throws -> Tensor {
    let (r, w) = try patchGrid(x, rows: rows, columns: columns)
    let n = x.shape[0], c = x.shape[2]
    return Tensor(shape: [n, (r / 2) * (w / 2), 4 * c]) { out in
        x.storage.withUnsafeBufferPointer { X in
            forEachShuffledRow(tiles: n, rows: r, columns: w) { o, src in
                (out.baseAddress! + o * c).initialize(from: X.baseAddress! + src * c, count: c)
            }
        }
    }
}

/// The backward of `pixelShuffle`, its inverse permutation: d (N·R/2·W/2, 4C) → (N·R·W, C), each input row receiving
/// the slice of the output row it was copied to.
public func pixelShuffleBackward(_ d: Tensor, tiles n: Int, rows r: Int, columns w: Int, channels c: Int) -> Tensor {
    Tensor(shape: [n * r * w, c]) { out in
        d.storage.withUnsafeBufferPointer { D in
            forEachShuffledRow(tiles: n, rows: r, columns: w) { o, src in
                (out.baseAddress! + src * c).initialize(from: D.baseAddress! + o * c, count: c)
            }
        }
    }
}

/// The one index map of the pixel shuffle: `body(o, src)` for every C-wide row o of the output (in order; output row
/// o is a quarter of a 4C token) and the input row src = token (b, 2i + dr, 2j + dc) it takes.
@inline(__always)
private func forEachShuffledRow(tiles n: Int, rows r: Int, columns w: Int, _ body: (Int, Int) -> Void) {
    var o = 0
    for b in 0..<n {
        for i in 0..<(r / 2) {
            for j in 0..<(w / 2) {
                for (dr, dc) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    body(o, (b * r + 2 * i + dr) * w + 2 * j + dc)
                    o += 1
                }
            }
        }
    }
}

/// `mlp1`: LayerNorm(4C) → Linear(4C → C_llm) → GELU(erf) → Linear(C_llm → C_llm).
public struct MLP1: Sendable {
    /// mlp1.0: LayerNorm weight and bias (4C), eps 1e-5.
    public let normWeight: Tensor, normBias: Tensor
    /// mlp1.1: weight (C_llm, 4C), bias (C_llm).
    public let fc1Weight: Tensor, fc1Bias: Tensor
    /// mlp1.3: weight (C_llm, C_llm), bias (C_llm).
    public let fc2Weight: Tensor, fc2Bias: Tensor
    public let eps: Float = 1e-5

    public init(
        normWeight: Tensor, normBias: Tensor, fc1Weight: Tensor, fc1Bias: Tensor, fc2Weight: Tensor, fc2Bias: Tensor
    ) {
        precondition(
            fc1Weight.rank == 2 && fc1Weight.shape[1] == normWeight.count
                && fc2Weight.shape == [fc1Weight.shape[0], fc1Weight.shape[0]],
            "MLP1: shapes do not chain: norm \(normWeight.shape), fc1 \(fc1Weight.shape), fc2 \(fc2Weight.shape)")
        self.normWeight = normWeight; self.normBias = normBias
        self.fc1Weight = fc1Weight; self.fc1Bias = fc1Bias; self.fc2Weight = fc2Weight; self.fc2Bias = fc2Bias
    }

    /// x (…, 4C) → (…, C_llm).
    public func callAsFunction(_ x: Tensor, compute: Compute = .fast) -> Tensor {
        if !compute.isReference { BLAS.use(threads: compute.threads) }
        let n = x.layerNorm(weight: normWeight, bias: normBias, eps: eps)
        let h = linear(n, weight: fc1Weight, bias: fc1Bias, compute: compute).map(geluErf)
        return linear(h, weight: fc2Weight, bias: fc2Bias, compute: compute)
    }

    /// Reads the tensors `MLP1Parameters` declares through `store`.
    public static func load(from store: WeightStore, _ p: MLP1Parameters) throws -> MLP1 {
        MLP1(
            normWeight: try store.read(p.norm.weight), normBias: try store.read(p.norm.bias!),
            fc1Weight: try store.read(p.fc1.weight), fc1Bias: try store.read(p.fc1.bias!),
            fc2Weight: try store.read(p.fc2.weight), fc2Bias: try store.read(p.fc2.bias!))
    }

    /// Reads mlp1.0, mlp1.1, mlp1.3 from a checkpoint; `inChannels` = 4C, `outChannels` = C_llm.
    public static func load(checkpoint: Checkpoint, inChannels: Int, outChannels: Int, prefix: String = "mlp1.") throws
        -> MLP1
    {
        try load(
            from: WeightStore(checkpoint),
            MLP1Parameters(inChannels: inChannels, outChannels: outChannels, prefix: prefix))
    }
}

/// The keys and shapes of `mlp1`: `mlp1.0` LayerNorm (4C), `mlp1.1` Linear (C_llm, 4C), `mlp1.3` Linear
/// (C_llm, C_llm); index 2 is the parameter-free GELU.
public struct MLP1Parameters: ParameterGroup {
    public let norm: NormParameters
    public let fc1, fc2: LinearParameters
    public init(inChannels k: Int, outChannels c: Int, prefix p: String = "mlp1.") {
        norm = NormParameters(p + "0", width: k, bias: true)
        fc1 = LinearParameters(p + "1", out: c, in: k, bias: true)
        fc2 = LinearParameters(p + "3", out: c, in: c, bias: true)
    }
}

/// Pixel shuffle followed by `mlp1`: ViT tokens (N, R·W, C) → LLM embeddings (N, R/2·W/2, C_llm).
public struct Connector: Sendable {
    public let mlp1: MLP1
    public init(mlp1: MLP1) { self.mlp1 = mlp1 }
    public func callAsFunction(_ x: Tensor, rows: Int? = nil, columns: Int? = nil) throws -> Tensor {
        mlp1(try pixelShuffle(x, rows: rows, columns: columns))
    }
}
