// Golden fixtures: values written by Python (PyTorch, transformers, PIL, HF tokenizers) under
// Fixtures/generate/, replayed here. Each fixture is a folder Fixtures/NAME/ holding NAME.safetensors
// and manifest.json (format version, generator, library versions, seed, shapes, tolerance).
import Foundation
import SafeTensors

/// Why a fixture could not be used.
public enum FixtureError: Error, CustomStringConvertible {
    case missing(String)
    case badManifest(String, String)
    case staleFormat(name: String, found: Int, expected: Int, generator: String)

    public var description: String {
        switch self {
        case let .missing(p): return "fixture not found: \(p) (run `make fixtures`)"
        case let .badManifest(p, r): return "\(p): \(r)"
        case let .staleFormat(n, f, e, g):
            return
                "fixture \(n) has format version \(f), this code reads \(e): re-run `python3 \(g)` (or `make fixtures`)"
        }
    }
}

/// The repository root: $EAGLET_ROOT, else the folder above this source file holding Package.swift.
public let repositoryRoot: String = {
    if let env = ProcessInfo.processInfo.environment["EAGLET_ROOT"], !env.isEmpty { return env }
    var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while url.path != "/" {
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        url.deleteLastPathComponent()
    }
    return FileManager.default.currentDirectoryPath
}()

/// A loaded fixture: its manifest and tensors.
public struct Fixture {
    /// The manifest format this code understands. Bump it together with fixturelib.FORMAT_VERSION.
    public static let formatVersion = 1

    public let name: String
    public let manifest: [String: Any]
    public let file: SafeTensorsFile

    /// Loads Fixtures/NAME/, checking the manifest's format version.
    public static func load(_ name: String) throws -> Fixture {
        let dir = "\(repositoryRoot)/Fixtures/\(name)"
        let manifestPath = "\(dir)/manifest.json"
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw FixtureError.missing(manifestPath)
        }
        guard let m = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw FixtureError.badManifest(manifestPath, "not a JSON object")
        }
        let generator = m["generator"] as? String ?? "Fixtures/generate/?"
        guard let version = m["format_version"] as? Int else {
            throw FixtureError.badManifest(manifestPath, "no format_version")
        }
        guard version == formatVersion else {
            throw FixtureError.staleFormat(name: name, found: version, expected: formatVersion, generator: generator)
        }
        return Fixture(name: name, manifest: m, file: try SafeTensorsFile(path: "\(dir)/\(name).safetensors"))
    }

    /// A tensor of the fixture, widened to Float32.
    public func tensor(_ key: String) throws -> Tensor { try file.tensor(key) }

    /// The tolerance row the manifest names (`"tolerance": "fp32-op"`), if any.
    public var tolerance: Tolerance? { (manifest["tolerance"] as? String).flatMap(Tolerance.named) }

    /// The path of a file next to the fixture.
    public func path(_ file: String) -> String { "\(repositoryRoot)/Fixtures/\(name)/\(file)" }
}
