// Build-tool plugin: runs _ChapterGen over Chapters/*.md to produce the ChapterTests sources.
// The list of chapter files is read when the package is planned, so a newly added chapter is seen
// after the next `swift build` re-plans the package (the Makefile touches Package.swift when the set
// of chapters changes).
import Foundation
import PackagePlugin

@main
struct ChapterTestsPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let chapters = context.package.directoryURL.appending(path: "Chapters")
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: chapters.path)) ?? [])
            .filter { $0.hasSuffix(".md") }.sorted().map { chapters.appending(path: $0) }
        // Library targets a chapter must teach: not the umbrella, not `_`-prefixed internals,
        // not system libraries, executables, plugins or tests.
        let modules = context.package.targets.compactMap { $0 as? SwiftSourceModuleTarget }
            .filter { $0.kind == .generic && $0.name != "Eaglet" && !$0.name.hasPrefix("_") }
            .map(\.name).sorted()
        let output = context.pluginWorkDirectoryURL.appending(path: "Chapters.swift")
        return [
            .buildCommand(
                displayName: "Generating chapter tests from Chapters/",
                executable: try context.tool(named: "_ChapterGen").url,
                arguments: [
                    "--chapters", chapters.path, "--output", output.path, "--modules", modules.joined(separator: ",")
                ],
                inputFiles: files,
                outputFiles: [output]
            )
        ]
    }
}
