"""The tokenizer test corpus and the training text of the tiny tokenizer, both written for Eaglet.

Every line here was written for this project (or is generated below from word lists written here), so it
is ours to place in the public domain. `CORPUS` is a list of (name, raw bytes): the raw bytes may be
invalid UTF-8 on purpose; the reference decodes them with errors="replace" before encoding, as Eaglet's
`Tokenizer.encode(bytes:)` does.
"""
import random

CORPUS_TEXT = [
    ("chapter-06", "The eagle's eye sees 42 birds \U0001F985 \u2014 na\u0131\u0308ve? nai\u0308ve!"),
    ("english", "The quick brown fox jumps over the lazy dog."),
    ("english-2", "A small model can still read a picture, if someone shows it how."),
    ("contractions", "I'm sure it's fine; they've said we'll see, you'd agree, and she's isn't HE'S or WE'LL."),
    ("contractions-odd", "'s 'S 'sam 'twas o'clock rock'n'roll '' ' 'll 'LL 'Re 'vE 'D 'M 'ſ"),
    ("code", "def add(a, b):\n    return a + b  # sum\n\nfor i in range(10):\n\tprint(f\"{i:03d}\")\n"),
    ("code-swift", "let x: [Int] = (0..<8).map { $0 * $0 } // squares\nif x.count >= 3 && x[2] != 4 { fatalError() }"),
    ("digits", "1234567890 3.14159 -42 1e-9 2024-11-27 ０１２３ ١٢٣ ²³ ½ Ⅻ"),
    ("whitespace", "a  b   c    d\t\te\n\nf \n g\r\n\r\nh   \n\n   i      "),
    ("whitespace-only", "   \t \n  "),
    ("newlines", "\n\n\nline\n\n"),
    ("trailing-space", "ends with spaces   "),
    ("cjk", "我们的模型可以看图片。日本語のテキストも、ひらがなとカタカナで書けます。한국어 문장도 있습니다."),
    ("arabic", "مرحبا بالعالم، هذا نص عربي قصير. العدد ٤٢."),
    ("hebrew-devanagari", "שלום עולם — नमस्ते दुनिया"),
    ("emoji", "I love 🦅 and 🍕! 👍🏽 🇩🇪🇯🇵"),
    ("emoji-zwj", "family 👨‍👩‍👧‍👦 scientist 👩🏾‍🔬 rainbow flag 🏳️‍🌈 heart ❤️"),
    ("combining", "Cafe\u0301 na\u0308ive e\u0301le\u0300ve A\u030a n\u0303 q\u0307\u0323 \u1e0b\u0323 Ω\u0342"),
    ("nfc-composed", "Café naïve élève Å ñ"),
    ("hangul-jamo", "\u1100\u1161\u11a8 \u1112\u1161\u11ab"),
    ("special-glued", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|><|endoftext|>"),
    ("eagle-special", "<image 1><img><IMG_CONTEXT><IMG_CONTEXT></img>\nWhat is this?"),
    ("special-partial", "<|im_start <img <IMG_CONTEXT <|im_end|x </img>>"),
    ("punctuation", "Hello, world!!! (really?) [yes] {no} <tag attr=\"v\"/> --- ... ¿Qué? «non» “quotes” ‘single’"),
    ("mixed-scripts", "Ελληνικά Русский текст ไทย ქართული Ꭰꮃ"),
    ("url", "https://example.org/path?q=1&r=two#frag email@example.com"),
    ("unicode-spaces", "a\u00a0b\u2003c\u3000d\u200be\u2028f\u0085g"),
    ("unicode-space-runs", "p\u00a0\u00a0q r\u2003\u2003\u2003s t\u0085\u0085u v\u200b\u200bw x\u3000 \u3000y "
                           "\u2028\u2029 z\u180e\u180eend\u00a0 \x0b\x0c k\x1c\x1d\x1e\x1f m\u2000\u2001\u202f\u205f!"),
    ("long-word", "Pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism"),
    ("edge-controls", "x!\x1c y\x1c\x1c\n z\u2028\n\u0085\n \r\r\n\t!\n\n?"),
    ("long-runs", "a" * 300 + " " * 100 + "\U0001F600" * 50 + "-" * 80 + "\n" * 20 + "9" * 30),
    ("long-cjk", "我们的模型可以看图片山水天地人大小上下中文字" * 20),
    ("long-base64", "QmFzZTY0IGlzIGEgbG9uZyBydW4gb2YgbGV0dGVycw" * 12 + "=="),
    ("empty", ""),
    ("single-space", " "),
]

CORPUS_BYTES = [
    ("invalid-utf8", b"valid \xff\xfe then \xc3( and \xe2\x82 cut \xf0\x9f\x98 end\x80"),
    ("invalid-utf8-surrogate", b"surrogate \xed\xa0\x80 overlong \xc0\xaf \xf8\x88\x80\x80\x80 ok"),
]

FUZZ_POOL = ("aAzZsStTrReEvVmMlLdDſK'' \t\n\r\x0b\x0c\x1c\u0085\u00a0\u2003\u3000\u200b\u2028"
             "0123456789٣²½Ⅻ.,;:!?-—…()[]{}<>/\\\"#$%&*+=@^_`|~"
             "éñßÆøÅ\u0301\u0308\u0323\u0342ıİĳΩωЖжשא्नमक我山のカ한\u1100\u1161\u11a8مرح٤"
             "🦅🍕👍🏽\u200d👩🔬❤\ufe0f🇩🇪\U0001F3FB\ufffd\U00010400\U0001D400")


def fuzz_cases(n: int = 240, seed: int = 11):
    """Random strings over FUZZ_POOL (every class the split regex tells apart), plus bits of special tokens."""
    rng = random.Random(seed)
    pieces = list(FUZZ_POOL) + ["<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<|endoftext|>",
                                "'s", "'LL", "'ve", "  ", "\r\n", " the", "ing"]
    out = []
    for i in range(n):
        k = rng.randint(1, 48)
        out.append((f"fuzz-{i}", "".join(rng.choice(pieces) for _ in range(k)).encode("utf-8")))
    return out


CORPUS = [(n, t.encode("utf-8")) for n, t in CORPUS_TEXT] + CORPUS_BYTES + fuzz_cases()


TRAINING_EXTRA = [
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure it's fine; they've said we'll see, you'd agree.",
    "我们的模型可以看图片。日本語のテキストも、ひらがなとカタカナで書けます。한국어 문장도 있습니다.",
    "مرحبا بالعالم، هذا نص عربي قصير.",
    "Café naïve élève Å ñ Ελληνικά Русский текст",
    "family 👨‍👩‍👧‍👦 heart ❤️ 👍🏽",
]

WORDS = ("the a an of to in and is was that it for on with as by at from this be are have not but or "
         "picture image model token tile frame video eagle bird sky river stone light small large read write "
         "see look show tell ask answer question time place people child water tree house road city world "
         "quick brown lazy dog fox cat jumps runs sleeps sings flies over under near far before after").split()
CODE = ["def f(x):\n    return x * 2\n", "for i in range(8):\n    print(i)\n", "let y = x.map { $0 + 1 }\n",
        "if (a != b) { return -1; }\n", "import numpy as np\nz = np.zeros((3, 4))\n", "x += 1  # count\n"]
CJK = "我们的模型可以看图片日本語のテキストひらがなカタカナ한국어문장있습니다山水天地人大小上下中文字"
ARABIC = "مرحبا بالعالم هذا نص عربي قصير كتاب قلم بيت"
EMOJI = ["🦅", "🍕", "👍🏽", "👨‍👩‍👧‍👦", "❤️", "🇩🇪", "🙂"]


def training_text(seed: int = 2025, sentences: int = 4000) -> list[str]:
    """Deterministic synthetic training text: sentences from the word lists above, code, numbers, other scripts."""
    rng = random.Random(seed)
    out = list(TRAINING_EXTRA)  # independent of CORPUS, so growing the test corpus never retrains
    for _ in range(sentences):
        kind = rng.random()
        if kind < 0.6:
            words = [rng.choice(WORDS) for _ in range(rng.randint(4, 14))]
            s = " ".join(words)
            s = s[0].upper() + s[1:] + rng.choice([".", "!", "?", ",", ";", "..."])
            if rng.random() < 0.2:
                s = s.replace(" is", "'s").replace(" not", "n't")
        elif kind < 0.72:
            s = rng.choice(CODE)
        elif kind < 0.8:
            s = " ".join(str(rng.randint(0, 10 ** rng.randint(1, 6))) for _ in range(rng.randint(2, 6)))
        elif kind < 0.9:
            s = "".join(rng.choice(CJK) for _ in range(rng.randint(4, 20)))
        elif kind < 0.96:
            s = " ".join(rng.choice(ARABIC.split()) for _ in range(rng.randint(3, 8)))
        else:
            s = " ".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 4)))
        out.append(s)
    return out


def bench_text(seed: int = 7, target_bytes: int = 4 << 20) -> str:
    """A few MB of mixed text for the throughput benchmark: prose, code, CJK, Arabic, emoji, numbers."""
    rng = random.Random(seed)
    base = [t for _, t in CORPUS_TEXT] + training_text(seed, 2000)
    parts, n = [], 0
    while n < target_bytes:
        s = rng.choice(base)
        parts.append(s)
        n += len(s.encode("utf-8")) + 1
    return "\n".join(parts)
