// The runtime of chapters-as-tests. `_ChapterGen` turns each Chapters/NN-topic.md into one test whose
// body is the chapter's Swift cells in order; cells print through `show(...)`, which lands here, and
// after each cell the shown text is compared with the cell's ```output block. Failures point at the
// chapter's own file and line.
import Foundation
import Testing

/// Collects what one chapter's cells show and checks it against their output blocks.
public final class Notebook {
    public let chapter: String
    public let chapterPath: String
    private var shown: [String] = []
    private var cell = 0
    private var cellLine = 0

    public init(chapter: String, path: String) {
        self.chapter = chapter
        chapterPath = path
    }

    /// Appends one line, like `print`: items joined by `separator`.
    public func show(_ items: [Any], separator: String = " ") {
        let line = items.map { "\($0)" }.joined(separator: separator)
        shown.append(contentsOf: line.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
    }

    /// Marks the start of cell `index`, whose code starts at `line` of the chapter file.
    public func begin(cell index: Int, line: Int) {
        cell = index
        cellLine = line
        shown = []
    }

    /// Compares what the cell showed with `expected` (nil: the cell has no output block and must show
    /// nothing). Trailing whitespace on each line and blank lines at either end are ignored.
    public func end(cell index: Int, expected: String?, outputLine: Int) {
        let got = Notebook.normalise(shown.joined(separator: "\n"))
        let want = Notebook.normalise(expected ?? "")
        if got != want {
            let location = SourceLocation(
                fileID: "Chapters/\(chapter)", filePath: chapterPath,
                line: expected == nil ? cellLine : outputLine, column: 1)
            let what =
                expected == nil
                ? "cell \(index) has no ```output block but showed:\n\(got)"
                : "cell \(index) showed something other than its ```output block.\n--- expected\n\(want)\n--- shown\n\(got)"
            Issue.record(Comment(rawValue: "\(chapter): \(what)"), sourceLocation: location)
        }
    }

    /// Records an error thrown by the current cell at the cell's line.
    public func thrown(_ error: Error) {
        let location = SourceLocation(fileID: "Chapters/\(chapter)", filePath: chapterPath, line: cellLine, column: 1)
        Issue.record(Comment(rawValue: "\(chapter): cell \(cell) threw: \(error)"), sourceLocation: location)
    }

    static func normalise(_ s: String) -> String {
        var lines = s.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var l = Substring(line)
            while let last = l.last, last == " " || last == "\t" || last == "\r" { l = l.dropLast() }
            return String(l)
        }
        while lines.first == "" { lines.removeFirst() }
        while lines.last == "" { lines.removeLast() }
        return lines.joined(separator: "\n")
    }
}
