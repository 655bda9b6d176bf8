// The one closeness check of Eaglet: |a − b| ≤ atol + rtol·|b|, NaN/±Inf patterns must match exactly,
// and a failure reports the worst index with both values and how many elements missed.
import Testing
import Tensor

/// What a comparison found. `maxRelative` is the normwise figure max|a−b| / max|b| used everywhere in
/// Eaglet when it says "relative error".
public struct CloseReport: Sendable, CustomStringConvertible {
    public var count = 0
    public var misses = 0
    public var worstIndex: Int? = nil
    public var worstActual: Float = 0
    public var worstExpected: Float = 0
    /// Largest (|a−b| − bound) seen, the amount by which the worst element missed.
    public var worstExcess: Float = -.infinity
    public var maxAbsDiff: Float = 0
    public var maxAbsRef: Float = 0
    public var shapeMismatch: String? = nil

    public var passed: Bool { shapeMismatch == nil && misses == 0 }
    public var maxRelative: Float { maxAbsRef > 0 ? maxAbsDiff / maxAbsRef : maxAbsDiff }

    public var description: String {
        if let s = shapeMismatch { return s }
        var s = "\(misses) of \(count) elements outside tolerance; max |a−b| = \(maxAbsDiff), relative \(maxRelative)"
        if let w = worstIndex { s += "; worst at flat index \(w): actual \(worstActual), expected \(worstExpected)" }
        return s
    }
}

/// Compares `actual` with the reference `expected` elementwise under `tolerance`.
public func closeness(_ actual: [Float], _ expected: [Float], _ tolerance: Tolerance) -> CloseReport {
    var r = CloseReport()
    guard actual.count == expected.count else {
        r.shapeMismatch = "element counts differ: actual \(actual.count), expected \(expected.count)"
        return r
    }
    r.count = actual.count
    for i in 0..<actual.count {
        let a = actual[i], b = expected[i]
        var miss = false
        var excess: Float = 0
        if a.isNaN || b.isNaN {
            miss = a.isNaN != b.isNaN
            excess = miss ? .infinity : 0
        } else if a.isInfinite || b.isInfinite {
            miss = a != b
            excess = miss ? .infinity : 0
        } else {
            let d = abs(a - b)
            r.maxAbsDiff = max(r.maxAbsDiff, d)
            r.maxAbsRef = max(r.maxAbsRef, abs(b))
            let bound = tolerance.atol + tolerance.rtol * abs(b)
            excess = d - bound
            miss = d > bound
        }
        if miss { r.misses += 1 }
        if miss && excess > r.worstExcess {
            r.worstExcess = excess; r.worstIndex = i; r.worstActual = a; r.worstExpected = b
        }
    }
    return r
}

/// Records a test issue unless `actual` matches `expected` (same shape) within `tolerance`.
/// Returns the report, so a test can also print or check `maxRelative`.
@discardableResult
public func assertClose(_ actual: Tensor, _ expected: Tensor, _ tolerance: Tolerance,
                        _ what: @autoclosure () -> String = "",
                        sourceLocation: SourceLocation = #_sourceLocation) -> CloseReport {
    var report: CloseReport
    if actual.shape != expected.shape {
        report = CloseReport()
        report.shapeMismatch = "shapes differ: actual \(actual.shape), expected \(expected.shape)"
    } else {
        report = closeness(actual.storage, expected.storage, tolerance)
    }
    if !report.passed {
        let label = what()
        Issue.record("\(label.isEmpty ? "" : label + ": ")not close under \(tolerance): \(report)", sourceLocation: sourceLocation)
    }
    return report
}

/// `assertClose` for plain arrays of the same length.
@discardableResult
public func assertClose(_ actual: [Float], _ expected: [Float], _ tolerance: Tolerance,
                        _ what: @autoclosure () -> String = "",
                        sourceLocation: SourceLocation = #_sourceLocation) -> CloseReport {
    assertClose(Tensor(shape: [actual.count], storage: actual), Tensor(shape: [expected.count], storage: expected),
                tolerance, what(), sourceLocation: sourceLocation)
}
