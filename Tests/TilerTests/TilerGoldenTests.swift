// Tiler against the Python reference (Fixtures/tiler-grids, Fixtures/generate/tiler_grids.py) and the
// whole pixel pipeline against PIL (Fixtures/imaging, Fixtures/generate/imaging.py).
import Foundation
import Testing
import Imaging
import Tensor
import Tiler
import _TestSupport

@Suite struct TilerMatchesPythonReference {
    @Test func gridsMatchPythonReferenceOnEveryCase() throws {
        let f = try Fixture.load("tiler-grids")
        func ints(_ k: String) throws -> [Int] { try f.file.integers(k).values.map { Int($0) } }
        let w = try ints("width"), h = try ints("height"), s = try ints("tile_size")
        let lo = try ints("min_tiles"), hi = try ints("max_tiles")
        let ic = try ints("iap_columns"), ir = try ints("iap_rows"), vc = try ints("internvl_columns"),
            vr = try ints("internvl_rows")
        #expect(w.count > 3000)
        var iapMisses = 0, internVLMisses = 0
        for i in 0..<w.count {
            let iap = chooseGrid(width: w[i], height: h[i], tileSize: s[i], minTiles: lo[i], maxTiles: hi[i])
            let ivl = chooseGrid(
                width: w[i], height: h[i], tileSize: s[i], minTiles: lo[i], maxTiles: hi[i], rule: .internVL)
            if iap != TileGrid(columns: ic[i], rows: ir[i]) {
                iapMisses += 1
                if iapMisses <= 5 {
                    Issue.record("IAP \(w[i])×\(h[i]) S=\(s[i]) \(lo[i])…\(hi[i]): \(iap), reference \(ic[i])×\(ir[i])")
                }
            }
            if ivl != TileGrid(columns: vc[i], rows: vr[i]) {
                internVLMisses += 1
                if internVLMisses <= 5 {
                    Issue.record(
                        "InternVL \(w[i])×\(h[i]) S=\(s[i]) \(lo[i])…\(hi[i]): \(ivl), reference \(vc[i])×\(vr[i])")
                }
            }
        }
        #expect(iapMisses == 0 && internVLMisses == 0)
    }

    @Test func specWorkedExamples() {
        // docs/spec.md §1.4: (W, H, InternVL grid, IAP grid), max 12 tiles, S = 448.
        let table: [(Int, Int, TileGrid, TileGrid)] = [
            (448, 448, .init(columns: 1, rows: 1), .init(columns: 1, rows: 1)),
            (640, 480, .init(columns: 4, rows: 3), .init(columns: 4, rows: 3)),
            (1920, 1080, .init(columns: 4, rows: 2), .init(columns: 4, rows: 2)),
            (3840, 2160, .init(columns: 4, rows: 2), .init(columns: 4, rows: 3)),
            (2480, 3508, .init(columns: 2, rows: 3), .init(columns: 3, rows: 4)),
            (1000, 100, .init(columns: 10, rows: 1), .init(columns: 10, rows: 1))
        ]
        for (w, h, internVL, iap) in table {
            #expect(chooseGrid(width: w, height: h, tileSize: 448, minTiles: 1, maxTiles: 12) == iap, "IAP \(w)×\(h)")
            #expect(
                chooseGrid(width: w, height: h, tileSize: 448, minTiles: 1, maxTiles: 12, rule: .internVL) == internVL,
                "InternVL \(w)×\(h)")
        }
    }

    @Test func candidateOrderIsCountThenFewerColumns() {
        let c = candidateGrids(minTiles: 1, maxTiles: 4).map(\.description)
        #expect(c == ["1×1", "1×2", "2×1", "1×3", "3×1", "1×4", "2×2", "4×1"])
        #expect(candidateGrids(minTiles: 3, maxTiles: 3).map(\.description) == ["1×3", "3×1"])
    }
}

@Suite struct TilerPixelValuesMatchPIL {
    @Test func pixelValuesMatchPILPipeline() throws {
        let f = try Fixture.load("imaging")
        let keys = f.file.names.filter { $0.hasPrefix("pixel_values.") && $0.split(separator: ".").count == 5 }
        #expect(keys.count >= 6)
        for key in keys {
            // pixel_values.NAME.EXT.sS.maxM
            let parts = key.split(separator: ".")
            let name = "\(parts[1]).\(parts[2])"
            let s = Int(parts[3].dropFirst())!, m = Int(parts[4].dropFirst(3))!
            let tiler = try Tiler(TilingConfig(tileSize: s, minTiles: 1, maxTiles: m))
            let image = try RGBImage.load(f.path("files/\(name)"))
            let grid = try f.file.integers(key + ".grid").values
            #expect(
                tiler.grid(width: image.width, height: image.height)
                    == TileGrid(columns: Int(grid[0]), rows: Int(grid[1])), "\(key) grid")
            let expected = try f.tensor(key)
            assertClose(tiler.pixelValues(image), expected, .exact, key)
            // the naive resize is within a grey level almost everywhere: ≤ 2/255·2 after normalisation
            let naive = tiler.pixelValues(image, compute: .reference)
            let d = zip(naive.storage, expected.storage).map { abs($0 - $1) }.max() ?? 0
            #expect(d <= 3 * 2 / 255 + 1e-6, "naive \(key): max |diff| \(d)")
        }
    }

    @Test func pixelValuesAtTileSize448MatchPIL() throws {
        // 256×192 → 4×3 grid of 448-pixel tiles + thumbnail; the fixture keeps sums and one row per tile.
        let f = try Fixture.load("imaging")
        let key = "pixel_values.big.png.s448.max12"
        let tiler = try Tiler()
        let image = try RGBImage.load(f.path("files/big.png"))
        let grid = try f.file.integers(key + ".grid").values
        #expect(tiler.grid(width: 256, height: 192) == TileGrid(columns: Int(grid[0]), rows: Int(grid[1])))
        let pv = tiler.pixelValues(image)
        #expect(pv.shape == [13, 3, 448, 448])
        let (n, s) = (pv.shape[0], 448)
        var sums = [Float](), row = [Float]()
        for k in 0..<n {
            for c in 0..<3 {
                let base = (k * 3 + c) * s * s
                sums.append(Float(pv.storage[base..<base + s * s].reduce(0.0) { $0 + Double($1) }))
                row += pv.storage[base + 223 * s..<base + 224 * s]
            }
        }
        assertClose(
            Tensor(shape: [n, 3, s], storage: row), try f.tensor(key + ".row223"), .exact, "row 223 of every tile")
        assertClose(Tensor(shape: [n, 3], storage: sums), try f.tensor(key + ".sums"), .fp32Op, "per-tile channel sums")
    }

    @Test func thumbnailOnlyWhenMoreThanOneTile() throws {
        let tiler = try Tiler(TilingConfig(tileSize: 16, maxTiles: 6))
        let square = RGBImage(width: 16, height: 16, fill: (1, 2, 3))
        #expect(tiler.tiles(of: square).count == 1)
        let wide = RGBImage(width: 64, height: 16) { x, _ in (UInt8(x * 4), 0, 0) }
        let g = tiler.grid(width: 64, height: 16)
        #expect(g == TileGrid(columns: 4, rows: 1))
        let tiles = tiler.tiles(of: wide)
        #expect(tiles.count == 5)
        // row-major cut of an image already at the grid size: tile k is columns [16k, 16k+16)
        #expect(tiles[2] == wide.cropped(x: 32, y: 0, width: 16, height: 16))
        let noThumb = try Tiler(TilingConfig(tileSize: 16, maxTiles: 6, useThumbnail: false))
        #expect(noThumb.tiles(of: wide).count == 4)
        #expect(tiler.pixelValues(wide).shape == [5, 3, 16, 16])
    }

    @Test func configDecodesFromEagleConfigJSON() throws {
        let json =
            #"{"force_image_size": 448, "min_dynamic_tiles": 1, "max_dynamic_tiles": 12, "use_thumbnail": true, "downsample_ratio": 0.5}"#
        let c = try JSONDecoder().decode(TilingConfig.self, from: Data(json.utf8))
        #expect(c == TilingConfig())
        let partial = try JSONDecoder().decode(TilingConfig.self, from: Data(#"{"max_dynamic_tiles": 6}"#.utf8))
        #expect(partial == TilingConfig(maxTiles: 6))
        #expect(
            throws: TilerError.invalidConfig(field: "max tiles", value: 0, expected: "between min tiles (1) and 1024")
        ) {
            try Tiler(TilingConfig(maxTiles: 0))
        }
        #expect(throws: TilerError.invalidConfig(field: "min tiles", value: 0, expected: "at least 1")) {
            try Tiler(TilingConfig(minTiles: 0))
        }
        #expect(
            throws: TilerError.invalidConfig(
                field: "max tiles", value: 1024,
                expected: "(max tiles + 1) · tile size² ≤ 268435456 pixels with tile size 4096")
        ) {
            try Tiler(TilingConfig(tileSize: 4096, maxTiles: 1024))
        }
        #expect(throws: TilerError.invalidConfig(field: "tile size", value: 0, expected: "1…8192")) {
            try Tiler(TilingConfig(tileSize: 0))
        }
    }
}
