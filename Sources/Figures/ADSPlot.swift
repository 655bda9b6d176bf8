// A picture of ADS degrading one sample as the context shrinks, drawn with Imaging's rectangles.
//
// One bar per context length L (left: smallest), its height proportional to L against the largest L:
// grey = text tokens, blue = frame tokens (256 per frame), orange = image tile tokens, light = unused.
// A sample ADS cannot fit at that L is a short red bar. No axis labels: the chapter says what the bars are.
import ADS
import Imaging

/// Stacked bars of text / frame / tile tokens for `request` at each of `contexts`.
public func adsDegradationPicture(
    _ request: ADSRequest, contexts: [Int], config: ADSConfig = ADSConfig(),
    barWidth: Int = 10, gap: Int = 3, height: Int = 160
) -> RGBImage {
    let margin = 6
    let width = 2 * margin + contexts.count * (barWidth + gap) - gap
    var picture = RGBImage(width: max(width, 1), height: height + 2 * margin, fill: (255, 255, 255))
    let largest = Double(contexts.max() ?? 1)
    for (k, l) in contexts.enumerated() {
        let x = margin + k * (barWidth + gap)
        let bottom = margin + height
        func rows(_ tokens: Int) -> Int { Int((Double(tokens) / largest * Double(height)).rounded()) }
        var r = request
        r.maxContext = l
        guard let a = try? automaticDegradeSampling(r, config: config) else {
            picture.fill(x: x, y: bottom - 6, width: barWidth, height: 6, color: (214, 39, 40))
            continue
        }
        let full = rows(l)
        picture.fill(x: x, y: bottom - full, width: barWidth, height: full, color: (230, 230, 230))
        var y = bottom
        let frameTokens = a.totalFrames * config.tokensPerTile
        for (tokens, color) in [
            (request.textTokens, (127, 127, 127)), (frameTokens, (31, 119, 180)),
            (a.visualTokens - frameTokens, (255, 127, 14))
        ] as [(Int, (Int, Int, Int))] {
            let h = rows(tokens)
            picture.fill(
                x: x, y: y - h, width: barWidth, height: h, color: (UInt8(color.0), UInt8(color.1), UInt8(color.2)))
            y -= h
        }
    }
    return picture
}
