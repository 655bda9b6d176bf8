// Parameters declared once: each module lists its tensors as (checkpoint key, shape, dtype policy), and both
// the checkpoint check and the loading are derived from that one list (docs/spec.md §7.2).
//
// What it is:
//   * `ParameterSpec`: one tensor — its full checkpoint key (and, for a tied LM head, the other key it may be
//     stored under), its shape, and how its stored dtype becomes what the module computes with.
//   * `ParameterGroup`: any struct whose stored properties are specs, optional specs, groups or arrays of
//     groups; `specs` collects them all in declaration order. A module's group (e.g. `Qwen2Parameters`) is
//     built from its config; its loader reads each spec through the store, and `WeightStore.check` compares
//     the whole group with the checkpoint. `LinearParameters` and `NormParameters` are the common pieces.
//   * `WeightStore`: owns the mapped checkpoint, is the one shape-checked reader — widening to fp32, or, for a
//     spec declared `native` under `WeightFormat.native`, lending a BF16 matrix in place (`readBF16`) — and
//     records what it handed out, so gradients or optimizer state can be allocated beside the parameters under
//     the same keys.
//   * `CheckpointError`: the one error for a checkpoint that does not match a declaration.
// What it is not: a converter between key layouts; each module picks its prefix from the names it finds.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Tensor
import _Essentials

/// How a stored tensor becomes the tensor a module computes with. A spec says what its module can take; the
/// store's `WeightFormat` says what the user asked for.
public enum DTypePolicy: String, Sendable, Hashable {
    /// Widened to Float32 at load.
    case float32
    /// A matrix the module can read in its stored dtype (BF16, read in place); other dtypes are widened.
    case native
}

/// What the user asked the matrices a module declares `native` to be held as (everything else — norms, biases,
/// the vision tower — is widened to fp32 in every format):
///   * `native`: BF16 matrices stay in the mapped checkpoint and are read in place; other dtypes are widened.
///   * `f32`: everything widened at load.
///   * `bf16`: as `native`, and fp32 (or F16) matrices are narrowed to BF16 copies (round to nearest even).
///   * `q8_0`: quantized at load to llama.cpp's q8_0 blocks (Tensor/Q8Matrix.swift) when their width is a multiple
///     of 32 (otherwise as `native`); the checkpoint's pages are read once and can then be dropped.
public enum WeightFormat: String, Sendable, CaseIterable {
    case native, f32, bf16, q8_0
}

/// How one matrix will be held, which the loaders and the memory plan both derive from the store.
public enum HeldDType: Sendable, Equatable {
    case float32
    /// BF16, read in place from the mapping.
    case bf16InPlace
    /// A BF16 copy narrowed from another dtype.
    case bf16Narrowed
    case q8_0

    /// Bytes held per value (q8_0: 34 bytes per 32), as a fraction numerator over 32.
    public var bytesPer32Values: Int {
        switch self {
        case .float32: return 128
        case .bf16InPlace, .bf16Narrowed: return 64
        case .q8_0: return 34
        }
    }
}

/// One parameter: full checkpoint key, shape, dtype policy.
public struct ParameterSpec: Sendable, Hashable, CustomStringConvertible {
    public let key: String
    /// Another key the same tensor may be stored under (a tied LM head: `lm_head.weight` or `embed_tokens.weight`).
    public let alternateKey: String?
    public let shape: [Int]
    public let dtype: DTypePolicy

    public init(_ key: String, _ shape: [Int], alternateKey: String? = nil, dtype: DTypePolicy = .float32) {
        self.key = key; self.shape = shape; self.alternateKey = alternateKey; self.dtype = dtype
    }

    public var description: String { "\(key) \(shape)" }
}

/// A struct of specs (or optional specs, nested groups, arrays of groups) that `specs` walks in order.
public protocol ParameterGroup: Sendable {}

extension ParameterGroup {
    /// Every spec of the group, in declaration order.
    public var specs: [ParameterSpec] { collectSpecs(self) }
}

private func collectSpecs(_ value: Any) -> [ParameterSpec] {
    if let s = value as? ParameterSpec { return [s] }
    let m = Mirror(reflecting: value)
    if m.displayStyle == .optional { return m.children.first.map { collectSpecs($0.value) } ?? [] }
    guard value is ParameterGroup || m.displayStyle == .collection else { return [] }
    return m.children.flatMap { collectSpecs($0.value) }
}

/// `nn.Linear`'s keys: `<base>.weight` (out, in) and, with a bias, `<base>.bias` (out).
public struct LinearParameters: ParameterGroup, Hashable {
    public let weight: ParameterSpec
    public let bias: ParameterSpec?
    /// `native`: the module can read the weight in its stored dtype (Qwen2's decoder projections).
    public init(_ base: String, out: Int, in k: Int, bias: Bool, weightDType: DTypePolicy = .float32) {
        weight = ParameterSpec(base + ".weight", [out, k], dtype: weightDType)
        self.bias = bias ? ParameterSpec(base + ".bias", [out]) : nil
    }
}

/// A norm's keys: `<base>.weight` (C) and, for LayerNorm, `<base>.bias` (C).
public struct NormParameters: ParameterGroup, Hashable {
    public let weight: ParameterSpec
    public let bias: ParameterSpec?
    public init(_ base: String, width c: Int, bias: Bool) {
        weight = ParameterSpec(base + ".weight", [c])
        self.bias = bias ? ParameterSpec(base + ".bias", [c]) : nil
    }
}

/// Why a checkpoint does not match what a module declares.
public enum CheckpointError: Error, Equatable, CustomStringConvertible, Sendable {
    /// No known key prefix of a component was found (`probe` under each of `tried`).
    case componentNotFound(source: String, component: String, tried: [String])
    case missing(source: String, tensor: String)
    case wrongShape(source: String, tensor: String, expected: [Int], found: [Int])
    /// The whole comparison at once: every missing, unexpected and mis-shaped tensor.
    case mismatch(source: String, missing: [String], unexpected: [String], misshaped: [String])

    public var description: String {
        switch self {
        case let .componentNotFound(s, c, tried):
            return "\(s): no \(c) found (looked for '\(tried.joined(separator: "' and '"))')"
        case let .missing(s, t): return "\(s): tensor '\(t)' is missing"
        case let .wrongShape(s, t, e, f): return "\(s): tensor '\(t)' has shape \(f), the config expects \(e)"
        case let .mismatch(s, m, u, w):
            var parts = [String]()
            if !m.isEmpty { parts.append("\(m.count) missing") }
            if !w.isEmpty { parts.append("\(w.count) mis-shaped") }
            if !u.isEmpty { parts.append("\(u.count) unexpected") }
            var lines = ["\(s): checkpoint does not match config.json (\(parts.joined(separator: ", ")) tensors)"]
            let items = m.map { "missing: \($0)" } + w.map { "mis-shaped: \($0)" } + u.map { "unexpected: \($0)" }
            lines += items.prefix(10).map { "  " + $0 }
            if items.count > 10 { lines.append("  and \(items.count - 10) more") }
            return lines.joined(separator: "\n")
        }
    }
}

extension CheckpointError: CustomDebugStringConvertible {
    public var debugDescription: String { description }
}

/// Anything that holds tensors by name: a `Checkpoint` (one file or shards) or a `SafeTensorsFile`.
public protocol TensorSource: AnyObject, Sendable {
    /// Every tensor name, sorted.
    var names: [String] { get }
    /// Entry of `name` (dtype, shape), or nil if absent.
    func info(_ name: String) -> TensorInfo?
    /// The tensor widened to Float32.
    func tensor(_ name: String) throws -> Tensor
    /// Where the tensors come from, for error messages.
    var sourceDescription: String { get }
    /// The BF16 matrix `name` read in place, or nil (another dtype, or a source that cannot lend its bytes).
    func bf16Matrix(_ name: String) -> BF16Matrix?
    /// Lets the memory behind `name`'s stored bytes go (a mapping's pages), once it has been copied elsewhere.
    func dropPages(_ name: String)
}

extension TensorSource {
    public func bf16Matrix(_ name: String) -> BF16Matrix? { nil }
    public func dropPages(_ name: String) {}
}

extension Checkpoint: TensorSource {
    public var sourceDescription: String { directory }
}

extension SafeTensorsFile: TensorSource {
    public var sourceDescription: String { path }
}

/// The mapped checkpoint and the one shape-checked reader every loader uses.
// @unchecked: `source` is immutable and itself Sendable; `handedOut` is only touched under `lock`.
public final class WeightStore: @unchecked Sendable {
    public let source: TensorSource
    public let format: WeightFormat
    private let lock = Mutex()
    private var handedOut = [ParameterSpec]()

    public init(_ source: TensorSource, format: WeightFormat = .f32) { self.source = source; self.format = format }
    /// Opens a checkpoint folder or file (see `Checkpoint.init(path:)`).
    public convenience init(path: String, format: WeightFormat = .f32) throws {
        self.init(try Checkpoint(path: path), format: format)
    }

    /// How `spec` will be held under the store's format (see `WeightFormat`); fp32 for anything not declared
    /// `native`, not a matrix, or absent.
    public func held(_ spec: ParameterSpec) -> HeldDType {
        guard spec.dtype == .native, let key = storedKey(spec), let info = source.info(key), info.shape.count == 2,
            info.dtype.isFloatingPoint
        else { return .float32 }
        let inPlace: HeldDType = info.dtype == .bf16 ? .bf16InPlace : .float32
        switch format {
        case .f32: return .float32
        case .native: return inPlace
        case .bf16: return info.dtype == .bf16 ? .bf16InPlace : .bf16Narrowed
        case .q8_0: return info.shape[1] > 0 && info.shape[1] % 32 == 0 ? .q8_0 : inPlace
        }
    }

    /// Reads `spec` as a BF16 matrix in place when it is stored as one, shape checked; nil otherwise (whatever the
    /// format: the q8_0 quantizer reads BF16 matrices this way too).
    public func readBF16(_ spec: ParameterSpec) throws -> BF16Matrix? {
        guard let m = source.bf16Matrix(try located(spec)) else { return nil }
        handOut(spec)
        return m
    }

    /// Every name in the checkpoint.
    public var names: [String] { source.names }
    /// Whether the checkpoint holds `key`.
    public func contains(_ key: String) -> Bool { source.info(key) != nil }

    /// The specs read so far, in order: the parameters a trainer would keep gradients and moments for.
    public var parameters: [ParameterSpec] { lock.lock(); defer { lock.unlock() }; return handedOut }

    /// The key `spec` is stored under here (its own or its alternate), or nil.
    public func storedKey(_ spec: ParameterSpec) -> String? {
        if contains(spec.key) { return spec.key }
        if let a = spec.alternateKey, contains(a) { return a }
        return nil
    }

    /// Reads `spec`, checking its shape; a missing or mis-shaped tensor is an error naming it. The tensor is a
    /// copy, so its mapped pages are given back (`TensorSource.dropPages`).
    public func read(_ spec: ParameterSpec) throws -> Tensor {
        let key = try located(spec)
        let t = try source.tensor(key)
        source.dropPages(key)
        handOut(spec)
        return t
    }

    /// Gives back the mapped pages of `spec`'s stored bytes after a copy of them was made (a quantized matrix).
    public func release(_ spec: ParameterSpec) {
        if let key = storedKey(spec) { source.dropPages(key) }
    }

    /// The key `spec` is stored under, after checking the stored shape: the one check both readers make.
    private func located(_ spec: ParameterSpec) throws -> String {
        guard let key = storedKey(spec), let info = source.info(key) else {
            throw CheckpointError.missing(source: source.sourceDescription, tensor: spec.key)
        }
        guard info.shape == spec.shape else {
            throw CheckpointError.wrongShape(
                source: source.sourceDescription, tensor: key, expected: spec.shape, found: info.shape)
        }
        return key
    }

    private func handOut(_ spec: ParameterSpec) { lock.lock(); handedOut.append(spec); lock.unlock() }

    /// Reads an optional spec (nil stays nil).
    public func read(_ spec: ParameterSpec?) throws -> Tensor? { try spec.map { try read($0) } }

    /// Compares the checkpoint with `specs` before anything is read: one `CheckpointError.mismatch` lists every
    /// missing, mis-shaped and unexpected tensor. Names for which `ignore` is true are never unexpected.
    public func check(_ specs: [ParameterSpec], ignore: (String) -> Bool = { _ in false }) throws {
        var missing = [String](), misshaped = [String](), expected = Set<String>()
        for spec in specs {
            expected.insert(spec.key)
            if let a = spec.alternateKey { expected.insert(a) }
            guard let key = storedKey(spec), let info = source.info(key) else { missing.append(spec.key); continue }
            if info.shape != spec.shape { misshaped.append("\(key) is \(info.shape), expected \(spec.shape)") }
        }
        let unexpected = names.filter { !expected.contains($0) && !ignore($0) }
        if !missing.isEmpty || !misshaped.isEmpty || !unexpected.isEmpty {
            throw CheckpointError.mismatch(
                source: source.sourceDescription, missing: missing.sorted(),
                unexpected: unexpected.sorted(), misshaped: misshaped.sorted())
        }
    }
}

/// Tensors held in memory by name (made in code: the benchmark's seeded models, tests that drop or rename a key).
public final class TensorDictionary: TensorSource {
    public let tensors: [String: Tensor]
    public let sourceDescription: String
    public init(_ tensors: [String: Tensor], description: String = "in-memory tensors") {
        self.tensors = tensors; sourceDescription = description
    }
    public var names: [String] { tensors.keys.sorted() }
    public func info(_ name: String) -> TensorInfo? {
        tensors[name].map { TensorInfo(name: name, dtype: .f32, shape: $0.shape, dataRange: 0..<($0.count * 4)) }
    }
    public func tensor(_ name: String) throws -> Tensor {
        guard let t = tensors[name] else { throw CheckpointError.missing(source: sourceDescription, tensor: name) }
        return t
    }
}
