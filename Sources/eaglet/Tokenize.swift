// `eaglet tokenize` and `eaglet detokenize`: text → ids and ids → text with a HF tokenizer.json (or a
// folder holding one, or vocab.json + merges.txt). Output matches HF `encode(text,
// add_special_tokens=False)` and `decode(ids, skip_special_tokens=False)`.
import ArgumentParser
import Eaglet
import _Essentials
import Foundation

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids of a text as a JSON array (one array per input line with --file).")

    @Option(help: "A tokenizer.json, or a folder holding one (or vocab.json + merges.txt).")
    var tokenizer: String
    @Option(help: "The text to encode.")
    var text: String?
    @Option(help: "A file to encode line by line (split on \\n only; an empty line gives []).")
    var file: String?

    func validate() throws {
        guard (text == nil) != (file == nil) else { throw ValidationError("give exactly one of --text and --file") }
    }

    func run() throws {
        try reportingInputErrors {
            let tok = try Tokenizer.load(tokenizer)
            if let text {
                print(jsonArray(tok.encode(text)))
                return
            }
            guard let file else { throw InputError(description: "give --text or --file") }
            let data: Data
            do { data = Data(try readRegularFile(file, limit: 256 << 20)) } catch {
                throw InputError(description: "\(file): \(error)")
            }
            // Split the raw bytes on 0x0A only (so "\r" stays in its line); bad UTF-8 becomes U+FFFD.
            var lines = Array(data).split(separator: 0x0A, omittingEmptySubsequences: false)
            if lines.count > 1, lines.last?.isEmpty == true { lines.removeLast() } // a final newline ends the last line
            var out = ""
            for line in lines { out += jsonArray(tok.encode(bytes: Array(line))) + "\n" }
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }
}

struct Detokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the text of comma-separated token ids.")

    @Option(help: "A tokenizer.json, or a folder holding one (or vocab.json + merges.txt).")
    var tokenizer: String
    @Option(help: "Comma-separated ids, e.g. 1,2,3.")
    var ids: String
    @Flag(help: "Drop special tokens (<|im_end|>, …).")
    var skipSpecialTokens = false

    func run() throws {
        try reportingInputErrors {
            let tok = try Tokenizer.load(tokenizer)
            var list = [Int]()
            for part in ids.split(separator: ",", omittingEmptySubsequences: true) {
                guard let id = Int(part.trimmingCharacters(in: .whitespaces)) else {
                    throw InputError(description: "--ids: \"\(part)\" is not an integer (expected e.g. 1,2,3)")
                }
                list.append(id)
            }
            print(try tok.decode(list, skipSpecialTokens: skipSpecialTokens))
        }
    }
}

/// `[1,2,3]`, no spaces.
func jsonArray(_ ids: [Int]) -> String { "[" + ids.map(String.init).joined(separator: ",") + "]" }
