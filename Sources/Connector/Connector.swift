// The connector between the vision tower and the language model (spec §4): pixel shuffle, then `mlp1`.
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
    case missingTensor(String)
    case wrongShape(tensor: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case let .oddPatchGrid(r, c): return "pixel shuffle needs an even patch grid to merge 2×2 blocks, got \(r)×\(c) patches"
        case let .notAGrid(t, r, c): return "pixel shuffle: \(t) tokens do not form a \(r)×\(c) patch grid"
        case let .notSquare(t): return "pixel shuffle: \(t) tokens are not a square patch grid; pass rows and columns"
        case let .missingTensor(n): return "connector checkpoint: no tensor '\(n)'"
        case let .wrongShape(n, e, f): return "connector checkpoint: tensor '\(n)' has shape \(f), expected \(e)"
        }
    }
}

/// The patch grid of `x` (N, T, C): `rows`×`columns` if given, else the square √T × √T.
func patchGrid(_ x: Tensor, rows: Int?, columns: Int?) throws -> (Int, Int) {
    precondition(x.rank == 3, "pixelShuffle: need (N, T, C), got \(x.shape)")
    let t = x.shape[1]
    let r: Int, c: Int
    if let rows, let columns { r = rows; c = columns }
    else {
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
    var out = [Float](repeating: 0, count: x.count)
    x.storage.withUnsafeBufferPointer { X in
        out.withUnsafeMutableBufferPointer { O in
            var o = 0
            for b in 0..<n {
                for i in 0..<(r / 2) {
                    for j in 0..<(w / 2) {
                        for (dr, dc) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                            let src = ((b * r + 2 * i + dr) * w + 2 * j + dc) * c
                            (O.baseAddress! + o).update(from: X.baseAddress! + src, count: c)
                            o += c
                        }
                    }
                }
            }
        }
    }
    return Tensor(shape: [n, (r / 2) * (w / 2), 4 * c], storage: out)
}

/// `mlp1`: LayerNorm(4C) → Linear(4C → C_llm) → GELU(erf) → Linear(C_llm → C_llm).
public struct MLP1: Sendable {
    /// mlp1.0: LayerNorm weight and bias (4C), eps 1e-5.
    public let norm_weight: Tensor, norm_bias: Tensor
    /// mlp1.1: weight (C_llm, 4C), bias (C_llm).
    public let fc1_weight: Tensor, fc1_bias: Tensor
    /// mlp1.3: weight (C_llm, C_llm), bias (C_llm).
    public let fc2_weight: Tensor, fc2_bias: Tensor
    public let eps: Float = 1e-5

    public init(norm_weight: Tensor, norm_bias: Tensor, fc1_weight: Tensor, fc1_bias: Tensor, fc2_weight: Tensor, fc2_bias: Tensor) {
        precondition(fc1_weight.rank == 2 && fc1_weight.shape[1] == norm_weight.count && fc2_weight.shape == [fc1_weight.shape[0], fc1_weight.shape[0]],
                     "MLP1: shapes do not chain: norm \(norm_weight.shape), fc1 \(fc1_weight.shape), fc2 \(fc2_weight.shape)")
        self.norm_weight = norm_weight; self.norm_bias = norm_bias
        self.fc1_weight = fc1_weight; self.fc1_bias = fc1_bias; self.fc2_weight = fc2_weight; self.fc2_bias = fc2_bias
    }

    /// x (…, 4C) → (…, C_llm).
    public func callAsFunction(_ x: Tensor, naive: Bool = false) -> Tensor {
        let n = x.layerNorm(weight: norm_weight, bias: norm_bias, eps: eps)
        let h = linear(n, weight: fc1_weight, bias: fc1_bias, naive: naive).map(geluErf)
        return linear(h, weight: fc2_weight, bias: fc2_bias, naive: naive)
    }

    /// Reads mlp1.0, mlp1.1, mlp1.3 from a checkpoint; `inChannels` = 4C, `outChannels` = C_llm.
    public static func load(checkpoint: Checkpoint, inChannels: Int, outChannels: Int, prefix: String = "mlp1.") throws -> MLP1 {
        func get(_ name: String, _ shape: [Int]) throws -> Tensor {
            let full = prefix + name
            guard checkpoint.info(full) != nil else { throw ConnectorError.missingTensor(full) }
            let t = try checkpoint.tensor(full)
            guard t.shape == shape else { throw ConnectorError.wrongShape(tensor: full, expected: shape, found: t.shape) }
            return t
        }
        return MLP1(norm_weight: try get("0.weight", [inChannels]), norm_bias: try get("0.bias", [inChannels]),
                    fc1_weight: try get("1.weight", [outChannels, inChannels]), fc1_bias: try get("1.bias", [outChannels]),
                    fc2_weight: try get("3.weight", [outChannels, outChannels]), fc2_bias: try get("3.bias", [outChannels]))
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
