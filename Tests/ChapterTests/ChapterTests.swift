// The chapters run as tests. The build-tool plugin `ChapterTestsPlugin` turns every Chapters/NN-*.md
// into a suite `ChapterNN` (see Sources/_ChapterGen/main.swift); `make chapter N=01` runs one.
// Here, one more check over all of them: the book is read with the repository alone, so its prose may not
// lean on words that only make sense outside it.
import Foundation
import Testing
import _TestSupport

@Suite struct ChapterProse {
    /// Phrases that point outside the repository: the project's issue tracker and its people.
    static let outsideWords = ["the issue", "issue asked", "the lead", "done-when", "done when", "the README's 512"]

    @Test func chaptersUseNoWordsFromOutsideTheBook() throws {
        let dir = "\(repositoryRoot)/Chapters"
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".md") }.sorted()
        #expect(!names.isEmpty)
        for name in names {
            let text = try String(contentsOfFile: "\(dir)/\(name)", encoding: .utf8)
            let lower = text.lowercased()
            for w in Self.outsideWords where lower.contains(w) {
                Issue.record("\(name): \"\(w)\" points outside the book")
            }
            // A section sign names its document: docs/spec.md or the paper, within the words just before it.
            let chars = Array(text)
            for (k, c) in chars.enumerated() where c == "§" {
                let before = String(chars[max(0, k - 24)..<k])
                if !before.contains("spec.md") && !before.contains("paper") {
                    Issue.record("\(name): \"…\(before)§\" cites a section without naming docs/spec.md or the paper")
                }
            }
        }
    }
}
