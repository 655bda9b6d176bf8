// The trained tiny checkpoint: its demo forward against the PyTorch reference, and the 500 held-out
// questions (never seen in training): Eaglet's accuracy by key word, and its agreement with the
// reference's greedy answers token for token (both written by Fixtures/generate/tiny_eagle_goldens.py).
import Foundation
import Testing
import Eagle
import Imaging
import Tensor
import _TestSupport

let tinyEagle = "\(repositoryRoot)/Fixtures/tiny-eagle"

@Suite(.serialized) struct TinyEagleMatchesPyTorch {
    @Test func demoForwardMatchesReference() throws {
        let golden = try Fixture.load("eagle-tiny-eagle")
        let p = try EaglePipeline(directory: tinyEagle)
        let prep = try p.prepare(
            images: [try RGBImage.load("\(tinyEagle)/demo.png")], question: golden.manifest["question"] as? String ?? ""
        )
        #expect(prep.ids.map(Int64.init) == (try golden.file.integers("input_ids").values))
        assertClose(try #require(prep.pixelValues), try golden.tensor("pixel_values"), .fp32Op, "pixel_values")
        let f = try p.model.forward(ids: prep.ids, pixelValues: prep.pixelValues)
        assertClose(f.logits, try golden.tensor("logits"), .fp32Block, "logits (BF16 weights widened on both sides)")
        let r = try p.generate(ids: prep.ids, pixelValues: prep.pixelValues, maxNewTokens: 16)
        #expect(r.tokens.map(Int64.init) == (try golden.file.integers("greedy_tokens").values))
    }

    @Test func heldOutAccuracyAndAgreementWithReference() throws {
        let dir = "\(repositoryRoot)/Fixtures/tiny-eagle-heldout"
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/heldout.json"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let questions = try #require(root["questions"] as? [[String: Any]])
        let maxNew = root["max_new_tokens"] as? Int ?? 16
        let p = try EaglePipeline(directory: tinyEagle)
        // The decoder quantized to q8_0 at load (chapter 15) answers the same questions.
        let p8 = try EaglePipeline(directory: tinyEagle, weights: .q8_0)
        let tok = try #require(p.tokenizer)
        var correct = 0, correct8 = 0, agree = 0, disagreements = [String]()
        for q in questions {
            let image = try RGBImage.load("\(dir)/\(q["image"] as? String ?? "")")
            let prep = try p.prepare(images: [image], question: q["question"] as? String ?? "")
            let r = try p.generate(ids: prep.ids, pixelValues: prep.pixelValues, maxNewTokens: maxNew)
            let r8 = try p8.generate(ids: prep.ids, pixelValues: prep.pixelValues, maxNewTokens: maxNew)
            func answers(_ tokens: [Int]) throws -> Bool {
                let text = try tok.decode(tokens, skipSpecialTokens: true)
                let words = text.lowercased().replacingOccurrences(of: ".", with: " ").split(separator: " ")
                return words.map(String.init).contains(q["key"] as? String ?? "")
            }
            if try answers(r.tokens) { correct += 1 }
            if try answers(r8.tokens) { correct8 += 1 }
            let text = try tok.decode(r.tokens, skipSpecialTokens: true)
            if r.tokens == (q["reference_tokens"] as? [Int] ?? []) {
                agree += 1
            } else if disagreements.count < 5 {
                disagreements.append("\(q["image"] ?? ""): \(text) vs \(q["reference_text"] ?? "")")
            }
        }
        let n = Double(questions.count)
        let accuracy = Double(correct) / n, agreement = Double(agree) / n, accuracy8 = Double(correct8) / n
        print(
            "tiny-eagle held-out: accuracy \(accuracy) (\(correct)/\(questions.count)), agreement with PyTorch \(agreement); reference accuracy \(root["reference_accuracy"] ?? "?"); q8_0 accuracy \(accuracy8) (\(correct8)/\(questions.count))"
        )
        #expect(questions.count >= 500)
        #expect(accuracy >= 0.9, "held-out accuracy \(accuracy)")
        #expect(abs(accuracy8 - accuracy) <= 0.02, "q8_0 accuracy \(accuracy8) against BF16's \(accuracy)")
        #expect(agreement >= 0.99, "agreement with the PyTorch reference \(agreement): \(disagreements)")
    }
}
