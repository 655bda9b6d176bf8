// PatchEmbed against transformers (Fixtures/siglip-vision-tiny, Fixtures/siglip2-naflex-tiny, from
// Fixtures/generate/siglip_vision.py) and naive against fast on odd shapes.
import Testing
import Tensor
import PatchEmbed
import _TestSupport

@Suite struct PatchEmbedMatchesTransformers {
    @Test(arguments: ["p14", "p16"])
    func conv2dPatchEmbeddingMatchesTorchConv(tag: String) throws {
        let f = try Fixture.load("siglip-vision-tiny")
        let conv = PatchConv2d(
            weight: try f.tensor("\(tag).vision_model.embeddings.patch_embedding.weight"),
            bias: try f.tensor("\(tag).vision_model.embeddings.patch_embedding.bias"))
        let pixels = try f.tensor("\(tag).pixel_values"), expected = try f.tensor("\(tag).patch_embeds")
        for b in 0..<pixels.shape[0] {
            assertClose(conv(pixels.row(b)), expected.row(b), .fp32Matmul, "\(tag) im2col+sgemm image \(b)")
            assertClose(conv.naive(pixels.row(b)), expected.row(b), .fp32Matmul, "\(tag) direct conv image \(b)")
        }
    }

    @Test(arguments: ["p14", "p16"])
    func embeddingsMatchSiglipVisionEmbeddings(tag: String) throws {
        let f = try Fixture.load("siglip-vision-tiny")
        let emb = SiglipVisionEmbeddings(
            patchEmbedding: PatchConv2d(
                weight: try f.tensor("\(tag).vision_model.embeddings.patch_embedding.weight"),
                bias: try f.tensor("\(tag).vision_model.embeddings.patch_embedding.bias")),
            positionEmbedding: try f.tensor("\(tag).vision_model.embeddings.position_embedding.weight"))
        let pixels = try f.tensor("\(tag).pixel_values"), expected = try f.tensor("\(tag).hidden_states.0")
        for b in 0..<pixels.shape[0] {
            assertClose(emb(pixels.row(b)), expected.row(b), .fp32Matmul, "\(tag) embeddings image \(b)")
            assertClose(
                emb(pixels.row(b), compute: .reference), expected.row(b), .fp32Matmul,
                "\(tag) naive embeddings image \(b)")
        }
    }

    @Test func resizedPositionTableMatchesTorchInterpolateAntialias() throws {
        let f = try Fixture.load("siglip2-naflex-tiny")
        let table = try f.tensor("vision_model.embeddings.position_embedding.weight") // (16, 36)
        let (_, shapes) = try f.file.integers("spatial_shapes")
        for b in 0..<2 {
            let h = Int(shapes[2 * b]), w = Int(shapes[2 * b + 1])
            let mine = resizePositionTable(table.reshaped([4, 4, -1]), height: h, width: w)
            let r = assertClose(mine, try f.tensor("resized_positions.\(b)"), .fp32Op, "F.interpolate to (\(h), \(w))")
            #expect(r.maxRelative < 1e-6)
            // transformers' own resize (the model path) pads past h·w with the first position.
            let model = try f.tensor("resized_positions_model.\(b)").slice(dim: 0, 0..<(h * w))
            assertClose(mine, model, .fp32Op, "Siglip2VisionEmbeddings.resize_positional_embeddings (\(h), \(w))")
        }
    }

    @Test func naflexEmbeddingsMatchSiglip2VisionEmbeddings() throws {
        let f = try Fixture.load("siglip2-naflex-tiny")
        let emb = Siglip2VisionEmbeddings(
            patchEmbedding: SiglipLinear(
                weight: try f.tensor("vision_model.embeddings.patch_embedding.weight"),
                bias: try f.tensor("vision_model.embeddings.patch_embedding.bias")),
            positionEmbedding: try f.tensor("vision_model.embeddings.position_embedding.weight"))
        let (_, shapes) = try f.file.integers("spatial_shapes")
        let pixels = try f.tensor("pixel_values"), expected = try f.tensor("hidden_states.0")
        for b in 0..<2 {
            let h = Int(shapes[2 * b]), w = Int(shapes[2 * b + 1])
            let patches = pixels.row(b).slice(dim: 0, 0..<(h * w))
            assertClose(
                emb(patches, height: h, width: w), expected.row(b).slice(dim: 0, 0..<(h * w)), .fp32Matmul,
                "NaFlex embeddings image \(b) (\(h)×\(w))")
        }
    }
}

@Suite struct PatchEmbedNaiveVersusFast {
    @Test(arguments: [(1, 1, 1, 1, 1), (3, 5, 2, 7, 11), (2, 7, 3, 10, 13), (3, 13, 4, 29, 17)])
    func im2colSgemmMatchesDirectConvolution(cin: Int, c: Int, p: Int, height: Int, width: Int) {
        let conv = PatchConv2d(
            weight: Tensor.seeded([c, cin, p, p], seed: UInt64(c * 31 + p), scale: 0.5),
            bias: Tensor.seeded([c], seed: 9))
        let pixels = Tensor.seeded([cin, height, width], seed: UInt64(height * 100 + width))
        let fast = conv(pixels), slow = conv.naive(pixels)
        #expect(fast.shape == [(height / p) * (width / p), c])
        assertClose(fast, slow, .fp32Matmul, "cin \(cin) c \(c) p \(p) \(height)×\(width)")
    }

    @Test func im2colRowIsThePatchInKernelOrder() {
        let pixels = Tensor(shape: [2, 4, 6]) { Float($0) }
        let conv = PatchConv2d(weight: Tensor(shape: [1, 2, 2, 2]), bias: Tensor(shape: [1]))
        let cols = conv.im2col(pixels) // grid 2×3, token 4 = row 1, col 1
        #expect(cols.shape == [6, 8])
        // channel 0 rows 2–3 cols 2–3, then channel 1 the same.
        #expect(cols.row(4).storage == [14, 15, 20, 21, 38, 39, 44, 45])
    }

    @Test(arguments: [(4, 6), (4, 3), (4, 1), (5, 5), (16, 9), (3, 32)])
    func antialiasedWeightsAreNormalisedAndIdentityAtSameSize(inSize: Int, outSize: Int) {
        let w = antialiasedLinearWeights(inSize: inSize, outSize: outSize)
        #expect(w.count == outSize)
        for row in w { #expect(abs(row.reduce(0, +) - 1) < 1e-12) }
        if inSize == outSize {
            for i in 0..<inSize { #expect(w[i][i] == 1) }
        }
    }
}
