// Connector against the PyTorch reference written from docs/spec.md §4 (Fixtures/connector,
// from Fixtures/generate/connector.py), and the direct pixel shuffle against the view/permute one.
import Connector
import SafeTensors
import Tensor
import Testing
import _TestSupport

@Suite struct ConnectorMatchesPyTorch {
    let f: Fixture
    init() throws { f = try Fixture.load("connector") }

    @Test func pixelShuffleMatchesReferenceSquareGrid() throws {
        let x = try f.tensor("shuffle.square.x"), want = try f.tensor("shuffle.square.out")
        assertClose(try pixelShuffle(x), want, .exact, "direct")
        assertClose(try pixelShuffleNaive(x), want, .exact, "view/permute")
    }

    @Test func pixelShuffleMatchesReferenceRectangularGrid() throws {
        let x = try f.tensor("shuffle.rect.x"), want = try f.tensor("shuffle.rect.out")
        assertClose(try pixelShuffle(x, rows: 4, columns: 10), want, .exact, "direct")
        assertClose(try pixelShuffleNaive(x, rows: 4, columns: 10), want, .exact, "view/permute")
    }

    @Test func oddPatchGridIsATypedError() throws {
        let x = Tensor(shape: [1, 25, 3], repeating: 1)
        #expect(throws: ConnectorError.oddPatchGrid(rows: 5, columns: 5)) { try pixelShuffle(x) }
        #expect(throws: ConnectorError.oddPatchGrid(rows: 5, columns: 5)) { try pixelShuffleNaive(x) }
        #expect(throws: ConnectorError.notSquare(tokens: 24)) {
            try pixelShuffle(Tensor(shape: [1, 24, 3], repeating: 1))
        }
        #expect(throws: ConnectorError.notAGrid(tokens: 24, rows: 4, columns: 4)) {
            try pixelShuffle(Tensor(shape: [1, 24, 3], repeating: 1), rows: 4, columns: 4)
        }
    }

    @Test func mlp1MatchesTorchSequential() throws {
        let ck = try Checkpoint(path: f.path("connector.safetensors"))
        let mlp1 = try MLP1.load(checkpoint: ck, inChannels: 28, outChannels: 13)
        let x = try f.tensor("shuffle.square.out")
        let r = assertClose(mlp1(x), try f.tensor("mlp1.out"), .fp32Block, "mlp1 (sgemm)")
        assertClose(mlp1(x, compute: .reference), try f.tensor("mlp1.out"), .fp32Block, "mlp1 (naive)")
        print("mlp1 max relative error vs PyTorch:", r.maxRelative)
        let connector = Connector(mlp1: mlp1)
        assertClose(
            try connector(try f.tensor("shuffle.square.x")), try f.tensor("connector.out"), .fp32Block, "connector")
    }

    @Test func mlp1LoaderNamesMissingAndMisShapedTensors() throws {
        let ck = try Checkpoint(path: f.path("connector.safetensors"))
        #expect(throws: CheckpointError.missing(source: ck.directory, tensor: "vision.mlp1.0.weight")) {
            try MLP1.load(checkpoint: ck, inChannels: 28, outChannels: 13, prefix: "vision.mlp1.")
        }
        #expect(
            throws: CheckpointError.wrongShape(
                source: ck.directory, tensor: "mlp1.0.weight", expected: [20], found: [28])
        ) {
            try MLP1.load(checkpoint: ck, inChannels: 20, outChannels: 13)
        }
    }
}
