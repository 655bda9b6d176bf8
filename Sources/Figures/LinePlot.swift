// A minimal line plot drawn into an RGBImage (for chapter 12's memory-vs-T picture): axes, light grid
// lines at each x sample, one polyline per series with a square at every point, log or linear y.
//
// What it is not: a plotting library — no text (the chapter's prose and the printed table carry the
// numbers), no anti-aliasing.
import Foundation
import Imaging

/// One series of a line plot.
public struct PlotSeries: Sendable {
    public var points: [(x: Double, y: Double)]
    public var color: (UInt8, UInt8, UInt8)
    public init(points: [(x: Double, y: Double)], color: (UInt8, UInt8, UInt8)) {
        self.points = points; self.color = color
    }
}

/// Draws `series` on a white `width`×`height` canvas. x is mapped log2 (sizes that double), y log10
/// when `logY`, else linearly from 0.
public func linePlot(_ series: [PlotSeries], width: Int = 360, height: Int = 240, logY: Bool = true) -> RGBImage {
    var img = RGBImage(width: width, height: height, fill: (255, 255, 255))
    let margin = 20
    let all = series.flatMap(\.points).filter { $0.x > 0 && (!logY || $0.y > 0) }
    guard let xmin = all.map(\.x).min(), let xmax = all.map(\.x).max(), let ymaxRaw = all.map(\.y).max() else {
        return img
    }
    let fx = { (x: Double) in log2(x) }, fy = { (y: Double) in logY ? log10(y) : y }
    let x0 = fx(xmin), x1 = max(fx(xmax), x0 + 1e-9)
    let y0 = logY ? floor(fy(all.map(\.y).min()!) - 0.5) : 0, y1 = max(logY ? ceil(fy(ymaxRaw)) : ymaxRaw, y0 + 1e-9)
    let pw = width - 2 * margin, ph = height - 2 * margin
    func px(_ x: Double) -> Int { margin + Int((fx(x) - x0) / (x1 - x0) * Double(pw)) }
    func py(_ y: Double) -> Int { height - margin - Int((fy(y) - y0) / (y1 - y0) * Double(ph)) }
    // grid: vertical at every x sample, horizontal at every decade (log) or quarter (linear)
    for x in Set(all.map(\.x)) { img.fill(x: px(x), y: margin, width: 1, height: ph, color: (225, 225, 225)) }
    if logY {
        var e = y0
        while e <= y1 { img.fill(x: margin, y: py(pow(10, e)), width: pw, height: 1, color: (225, 225, 225)); e += 1 }
    }
    img.fill(x: margin, y: margin, width: 1, height: ph + 1, color: (0, 0, 0))
    img.fill(x: margin, y: height - margin, width: pw + 1, height: 1, color: (0, 0, 0))
    for s in series {
        let pts = s.points.filter { $0.x > 0 && (!logY || $0.y > 0) }.map { (px($0.x), py($0.y)) }
        for (a, b) in zip(pts, pts.dropFirst()) { drawLine(&img, a, b, s.color) }
        for p in pts { img.fill(x: p.0 - 2, y: p.1 - 2, width: 5, height: 5, color: s.color) }
    }
    return img
}

/// A 2-pixel-thick straight line (Bresenham).
private func drawLine(_ img: inout RGBImage, _ a: (Int, Int), _ b: (Int, Int), _ color: (UInt8, UInt8, UInt8)) {
    var (x, y) = a
    let dx = abs(b.0 - x), dy = -abs(b.1 - y), sx = x < b.0 ? 1 : -1, sy = y < b.1 ? 1 : -1
    var err = dx + dy
    while true {
        img.fill(x: x, y: y, width: 2, height: 2, color: color)
        if x == b.0 && y == b.1 { break }
        let e2 = 2 * err
        if e2 >= dy { err += dy; x += sx }
        if e2 <= dx { err += dx; y += sy }
    }
}
