// Storage dtypes: checkpoints store F32, BF16 or F16; Eaglet computes in F32.
//
// bfloat16 is the top half of a float32 (1 sign, 8 exponent, 7 mantissa bits): widening is a shift,
// narrowing rounds to nearest, ties to even, as PyTorch's `.to(torch.bfloat16)` does. float16 is IEEE
// binary16 (1, 5, 10) with subnormals; Swift's `Float16` does both directions with correct rounding.

/// The element types a safetensors file may hold that Eaglet understands.
public enum DType: String, Sendable, CaseIterable {
    case f64 = "F64"
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u8 = "U8"
    case bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool { self == .f64 || self == .f32 || self == .f16 || self == .bf16 }
}

/// bfloat16 bits → Float (exact).
@inlinable
public func bf16ToFloat(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Float → bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN, ±Inf stays ±Inf.
@inlinable
public func floatToBF16(_ x: Float) -> UInt16 {
    let u = x.bitPattern
    if x.isNaN { return UInt16(truncatingIfNeeded: (u >> 16) | 0x0040) }
    let lsb = (u >> 16) & 1
    let rounded = u &+ 0x7FFF &+ lsb
    return UInt16(truncatingIfNeeded: rounded >> 16)
}

/// float16 bits → Float (exact).
@inlinable
public func f16ToFloat(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

/// Float → float16 bits, IEEE round to nearest even (overflow → ±Inf).
@inlinable
public func floatToF16(_ x: Float) -> UInt16 { Float16(x).bitPattern }

extension Tensor {
    /// The tensor rounded through bfloat16 and widened back (what storing it as BF16 would keep).
    public func roundedToBF16() -> Tensor { map { bf16ToFloat(floatToBF16($0)) } }
    /// The tensor rounded through float16 and widened back.
    public func roundedToF16() -> Tensor { map { f16ToFloat(floatToF16($0)) } }
}
