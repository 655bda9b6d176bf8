// Choosing the tile grid: Eagle 2.5's Image Area Preservation rule (docs/spec.md §1.3) and InternVL's older
// aspect-only rule (docs/spec.md §1.4) beside it, for comparison.
//
// Candidates (docs/spec.md §1.2): every (columns c, rows r) with c, r ≥ 1 and min ≤ c·r ≤ max, ordered by tile
// count c·r ascending and, within one count, by fewer columns first (Eaglet's documented order; the
// reference iterates a Python set there).
//
// IAP, for an image W×H, r = W/H, tile side S, candidate r_t = c/r:
//     score(c, r) = min(c·r·S² / (W·H), 0.6) · min(r_t / r, r / r_t)
// the first candidate with the strictly greatest score wins (so a smaller grid wins a tie).
// Once a grid covers 60 % of the original area only aspect fidelity matters; upscaling is free.
//
// InternVL: minimise |r − r_t|; on an exact tie, move to the later (larger) candidate when
// W·H > 0.5 · S² · c·r.
//
// What it is not: the resize and cut (Tiler.swift) or the ADS budget that picks max tiles per image.

/// A grid of `columns` × `rows` tiles.
public struct TileGrid: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let columns: Int
    public let rows: Int
    public init(columns: Int, rows: Int) { self.columns = columns; self.rows = rows }
    /// columns · rows (the thumbnail is not counted).
    public var tiles: Int { columns * rows }
    public var description: String { "\(columns)×\(rows)" }
}

/// Which grid-selection rule to use.
public enum TilingRule: String, Sendable, CaseIterable {
    /// Eagle 2.5's Image Area Preservation (the model's rule).
    case areaPreservation = "iap"
    /// InternVL's aspect-ratio-only rule (for comparison).
    case internVL = "internvl"
}

/// All grids with minTiles ≤ columns·rows ≤ maxTiles, by tile count, then fewer columns first.
public func candidateGrids(minTiles: Int, maxTiles: Int) -> [TileGrid] {
    var out = [TileGrid]()
    guard maxTiles >= 1 else { return out }
    for n in max(1, minTiles)...max(1, maxTiles) {
        for c in 1...n where n % c == 0 { out.append(TileGrid(columns: c, rows: n / c)) }
    }
    return out
}

/// The IAP score of `grid` for a `width`×`height` image and tiles of side `tileSize` (docs/spec.md §1.3).
public func areaPreservationScore(_ grid: TileGrid, width: Int, height: Int, tileSize: Int) -> Double {
    let aspect = Double(width) / Double(height)
    let target = Double(grid.columns) / Double(grid.rows)
    let areaRatio = Double(grid.columns * grid.rows * tileSize * tileSize) / Double(width * height)
    return min(areaRatio, 0.6) * min(target / aspect, aspect / target)
}

/// The grid `rule` picks for a `width`×`height` image (both ≥ 1) among `candidateGrids(min, max)`.
public func chooseGrid(
    width: Int, height: Int, tileSize: Int, minTiles: Int, maxTiles: Int,
    rule: TilingRule = .areaPreservation
) -> TileGrid {
    precondition(width > 0 && height > 0 && tileSize > 0, "chooseGrid: sizes must be positive")
    let candidates = candidateGrids(minTiles: minTiles, maxTiles: maxTiles)
    precondition(!candidates.isEmpty, "chooseGrid: no grid has between \(minTiles) and \(maxTiles) tiles")
    switch rule {
    case .areaPreservation:
        var best = candidates[0], bestScore = -Double.infinity
        for g in candidates {
            let s = areaPreservationScore(g, width: width, height: height, tileSize: tileSize)
            if s > bestScore { bestScore = s; best = g }
        }
        return best
    case .internVL:
        let aspect = Double(width) / Double(height)
        let area = Double(width * height)
        var best = TileGrid(columns: 1, rows: 1), bestDiff = Double.infinity
        for g in candidates {
            let diff = abs(aspect - Double(g.columns) / Double(g.rows))
            if diff < bestDiff {
                bestDiff = diff; best = g
            } else if diff == bestDiff, area > 0.5 * Double(tileSize * tileSize * g.columns * g.rows) {
                best = g
            }
        }
        return best
    }
}
