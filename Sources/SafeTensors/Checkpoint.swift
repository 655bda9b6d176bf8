// A checkpoint: one `model.safetensors`, or shards listed by `model.safetensors.index.json`.
//
// The index is {"metadata": {...}, "weight_map": {tensor name: shard file name}}. Shards are opened
// once each, lazily, and every name in the weight map must exist in the shard it points to. Shard names
// must be plain file names in the checkpoint's folder (no "/" or ".."), so an index cannot make Eaglet
// read files elsewhere.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
#if canImport(Glibc)
import Glibc
#endif

/// Tensors by name across one file or several shards.
// @unchecked: `shards` is only written in init; afterwards every property is read-only and SafeTensorsFile is Sendable.
public final class Checkpoint: @unchecked Sendable {
    public let directory: String
    /// tensor name → shard file name.
    public let weightMap: [String: String]
    private var shards: [String: SafeTensorsFile] = [:]

    /// Opens `path`: a folder holding `model.safetensors.index.json` or `model.safetensors`, or a
    /// single `.safetensors` file.
    public init(path: String) throws {
        guard let isDir = Path.isDirectory(path) else {
            throw SafeTensorsError.cannotOpen(file: path, reason: Path.whyUnreachable(path))
        }
        if !isDir {
            let file = try SafeTensorsFile(path: path)
            let name = Path.lastComponent(path)
            directory = Path.deletingLastComponent(path)
            shards[name] = file
            weightMap = Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, name) })
            return
        }
        directory = path
        let indexPath = Path.join(path, "model.safetensors.index.json")
        let singlePath = Path.join(path, "model.safetensors")
        if FileManager.default.fileExists(atPath: indexPath) {
            weightMap = try Checkpoint.readIndex(indexPath)
            for shard in Set(weightMap.values).sorted() {
                let file = try SafeTensorsFile(path: Path.join(path, shard))
                shards[shard] = file
            }
            for (name, shard) in weightMap where shards[shard]?.info(name) == nil {
                throw SafeTensorsError.missingTensor(file: Path.join(path, shard), tensor: name)
            }
        } else if FileManager.default.fileExists(atPath: singlePath) {
            let file = try SafeTensorsFile(path: singlePath)
            shards["model.safetensors"] = file
            weightMap = Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, "model.safetensors") })
        } else {
            throw SafeTensorsError.cannotOpen(
                file: path, reason: "neither model.safetensors.index.json nor model.safetensors is in this folder")
        }
    }

    static func readIndex(_ indexPath: String) throws -> [String: String] {
        // Refused from its size (fstat), before a byte is read.
        let data: [UInt8]
        do { data = try readRegularFile(indexPath, limit: 64_000_000) } catch let p as FileReadProblem {
            if case .tooLarge = p { throw SafeTensorsError.badIndex(file: indexPath, reason: "larger than 64 MB") }
            throw SafeTensorsError.cannotOpen(file: indexPath, reason: "\(p)")
        }
        guard let obj = (try? JSON.parse(data)) as? [String: Any] else {
            throw SafeTensorsError.badIndex(
                file: indexPath, reason: JSON.whyNot(data, [String: Any].self, what: "an object") ?? "not a JSON object"
            )
        }
        guard let map = obj["weight_map"] as? [String: Any] else {
            throw SafeTensorsError.badIndex(file: indexPath, reason: "missing object 'weight_map'")
        }
        var out = [String: String]()
        for (name, v) in map {
            guard let shard = v as? String else {
                throw SafeTensorsError.badIndex(file: indexPath, reason: "weight_map['\(name)'] is not a file name")
            }
            guard !shard.isEmpty, !shard.contains("/"), !shard.contains("\\"), shard != ".", shard != ".." else {
                throw SafeTensorsError.badIndex(
                    file: indexPath,
                    reason: "weight_map['\(name)'] = '\(shard)' is not a plain file name in the checkpoint folder")
            }
            out[name] = shard
        }
        return out
    }

    /// All tensor names, sorted.
    public var names: [String] { weightMap.keys.sorted() }

    /// The file that holds `name`.
    public func file(for name: String) throws -> SafeTensorsFile {
        guard let shard = weightMap[name], let f = shards[shard] else {
            throw SafeTensorsError.missingTensor(file: directory, tensor: name)
        }
        return f
    }

    /// Entry of `name` (dtype, shape), or nil.
    public func info(_ name: String) -> TensorInfo? {
        guard let shard = weightMap[name] else { return nil }
        return shards[shard]?.info(name)
    }

    /// The BF16 matrix `name` read in place (see `SafeTensorsFile.bf16Matrix`), or nil.
    public func bf16Matrix(_ name: String) -> BF16Matrix? { (try? file(for: name))?.bf16Matrix(name) }

    /// The tensor `name` widened to Float32.
    public func tensor(_ name: String) throws -> Tensor { try file(for: name).tensor(name) }

    /// See `SafeTensorsFile.dropPages`.
    public func dropPages(_ name: String) { (try? file(for: name))?.dropPages(name) }
}
