// The tolerance helper itself: what it counts as a miss, what it reports, and that docs/tolerances.md
// lists exactly the rows the code uses.
import Foundation
import Testing
import _TestSupport

@Suite struct AssertCloseBehaviour {
    @Test func boundIsAtolPlusRtolTimesReference() {
        let tol = Tolerance(name: "t", atol: 0.1, rtol: 0.5, reason: "")
        // |a−b| ≤ 0.1 + 0.5·|b|: for b = 2 the bound is 1.1
        #expect(closeness([3.1], [2], tol).passed)
        #expect(!closeness([3.2], [2], tol).passed)
        // the bound scales with the reference, not the actual value
        let relative = Tolerance(name: "r", atol: 0, rtol: 0.5, reason: "")
        #expect(closeness([1], [2], relative).passed) // bound 0.5·2 = 1 ≥ |1−2|
        #expect(!closeness([2], [1], relative).passed) // bound 0.5·1 = 0.5 < |2−1|
    }

    @Test func reportsWorstIndexValuesAndMissCount() {
        let r = closeness([1, 2, 3.5, 4, 9], [1, 2.5, 3, 4, 5], .exact)
        #expect(r.misses == 3)
        #expect(r.worstIndex == 4)
        #expect(r.worstActual == 9 && r.worstExpected == 5)
        #expect(r.maxAbsDiff == 4 && r.maxRelative == 4 / 5)
        #expect(r.description.contains("3 of 5"))
    }

    @Test func nanAndInfinityPatternsMustMatch() {
        #expect(closeness([.nan, .infinity, -.infinity], [.nan, .infinity, -.infinity], .exact).passed)
        #expect(!closeness([.nan], [1], .fp32Block).passed)
        #expect(!closeness([1], [.nan], .fp32Block).passed)
        #expect(!closeness([.infinity], [-.infinity], .fp32Block).passed)
        #expect(!closeness([Float.greatestFiniteMagnitude], [.infinity], .fp32Block).passed)
    }

    @Test func lengthMismatchIsAMiss() {
        #expect(!closeness([1, 2], [1], .fp32Op).passed)
    }

    @Test func toleranceTableMatchesDocs() throws {
        let text = try String(contentsOfFile: "\(repositoryRoot)/docs/tolerances.md", encoding: .utf8)
        var rows = [(String, Float, Float)]()
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 3, let atol = Float(cells[1]), let rtol = Float(cells[2]) else {
                Issue.record("docs/tolerances.md: cannot read row \(line)")
                continue
            }
            rows.append((cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`")), atol, rtol))
        }
        #expect(rows.map(\.0) == Tolerance.table.map(\.name), "rows of docs/tolerances.md vs Tolerance.table")
        for (name, atol, rtol) in rows {
            let t = Tolerance.named(name)
            #expect(t?.atol == atol && t?.rtol == rtol, "docs/tolerances.md row \(name)")
        }
    }

    @Test func staleFixtureFormatNamesTheGenerator() {
        let e = FixtureError.staleFormat(name: "x", found: 0, expected: 1, generator: "Fixtures/generate/x.py")
        #expect(e.description.contains("python3 Fixtures/generate/x.py"))
    }
}
