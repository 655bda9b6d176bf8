// The one closeness assertion of Eaglet: `closeness` (Tensor/Tolerance.swift, shared with the GPU check)
// under a row of the tolerance table, recorded as a test issue that names the worst index.
import Testing
@_exported import Tensor

/// Records a test issue unless `actual` matches `expected` (same shape) within `tolerance`.
/// Returns the report, so a test can also print or check `maxRelative`.
@discardableResult
public func assertClose(
    _ actual: Tensor, _ expected: Tensor, _ tolerance: Tolerance,
    _ what: @autoclosure () -> String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) -> CloseReport {
    var report: CloseReport
    if actual.shape != expected.shape {
        report = CloseReport()
        report.shapeMismatch = "shapes differ: actual \(actual.shape), expected \(expected.shape)"
    } else {
        report = closeness(actual.storage, expected.storage, tolerance)
    }
    if !report.passed {
        let label = what()
        Issue.record(
            "\(label.isEmpty ? "" : label + ": ")not close under \(tolerance): \(report)",
            sourceLocation: sourceLocation)
    }
    return report
}

/// `assertClose` for plain arrays of the same length.
@discardableResult
public func assertClose(
    _ actual: [Float], _ expected: [Float], _ tolerance: Tolerance,
    _ what: @autoclosure () -> String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) -> CloseReport {
    assertClose(
        Tensor(shape: [actual.count], storage: actual), Tensor(shape: [expected.count], storage: expected),
        tolerance, what(), sourceLocation: sourceLocation)
}
