// The chapters run as tests. The build-tool plugin `ChapterTestsPlugin` turns every Chapters/NN-*.md
// into a suite `ChapterNN` (see Sources/_ChapterGen/main.swift); nothing else lives here.
// Run one chapter: swift test --filter Chapter01
