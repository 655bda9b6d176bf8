// Pictures for chapter 13, drawn from the same layouts and rules the schemes run.
//
// What it is: `shardingPicture` (one row per rank, one column per token, coloured by the rank that holds
// it) and `ringStepsPicture` (one panel per ring step: the 2W × 2W grid of (query chunk, key chunk)
// pairs of a causal sequence, each pair coloured by the rank that computes it at that step; pairs on
// the diagonal, which need the causal mask inside, are drawn lighter).
// What it is not: a plotting library; no text (the chapter's captions say what is what).
import ContextParallel
import Imaging

let rankColors: [(UInt8, UInt8, UInt8)] = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
    (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127)
]

func lighter(_ c: (UInt8, UInt8, UInt8)) -> (UInt8, UInt8, UInt8) {
    (UInt8((Int(c.0) + 255) / 2), UInt8((Int(c.1) + 255) / 2), UInt8((Int(c.2) + 255) / 2))
}

/// Which rank holds which token: W rows of `cell`-pixel squares per token.
public func shardingPicture(_ layouts: [Layout], cell: Int = 16) -> RGBImage {
    let total = layouts.reduce(0) { $0 + Sharding.tokenCount($1) }
    var img = RGBImage(width: total * cell + 2, height: layouts.count * (cell + 2) + 2, fill: (255, 255, 255))
    for (r, l) in layouts.enumerated() {
        for p in Sharding.positions(l) {
            img.fill(
                x: 1 + p * cell, y: 1 + r * (cell + 2), width: cell - 1, height: cell,
                color: rankColors[r % rankColors.count])
        }
    }
    return img
}

/// For ring steps 0 … W−1, which (query chunk, key chunk) pairs each rank computes: a causal sequence
/// cut into 2W chunks laid out over W ranks by `layouts` (contiguous or zigzag), rows = query chunks,
/// columns = key chunks. Panels left to right.
public func ringStepsPicture(_ layouts: [Layout], chunk: Int, cell: Int = 18) -> RGBImage {
    let w = layouts.count, chunks = 2 * w
    func owner(_ c: Int) -> Int {
        layouts.firstIndex { l in l.contains { $0.start <= c * chunk && c * chunk < $0.end } }!
    }
    var panels = [RGBImage]()
    for step in 0..<w {
        var img = RGBImage(width: chunks * cell + 2, height: chunks * cell + 2, fill: (235, 235, 235))
        img.strokeRectangle(x: 0, y: 0, width: img.width, height: img.height, color: (0, 0, 0))
        for qc in 0..<chunks {
            let r = owner(qc), src = (r - step + w) % w
            for kc in 0..<chunks where owner(kc) == src {
                let qs = Segment(start: qc * chunk, count: chunk, sequenceStart: 0),
                    ks = Segment(start: kc * chunk, count: chunk, sequenceStart: 0)
                let vis = visibleScores(query: qs, key: ks)
                guard vis > 0 else { continue }
                let color =
                    vis == chunk * chunk ? rankColors[r % rankColors.count] : lighter(rankColors[r % rankColors.count])
                img.fill(x: 1 + kc * cell, y: 1 + qc * cell, width: cell - 1, height: cell - 1, color: color)
            }
        }
        panels.append(img)
    }
    return RGBImage.sideBySide(panels, gap: 12)
}
