"""A tiny CLIP BPE vocabulary in CLIP's exact file format.

`vocab.json` and `merges.txt` are laid out like openai/clip-vit-large-patch14's:
the 256 byte-level unicode characters, the same 256 with `</w>`, then one entry per
merge (in merge order), then `<|startoftext|>` and `<|endoftext|>`; `merges.txt`
starts with the `#version: 0.2` header line. Merges are chosen so that every
caption word becomes exactly one whole-word token under CLIP's BPE (lowest-rank
pair first), so transformers.CLIPTokenizer and the Swift port read it unchanged.
"""

import json
import os


def bytes_to_unicode():
    """CLIP's byte -> printable unicode table (openai/CLIP simple_tokenizer.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def bpe(token, ranks):
    """CLIP's BPE of one pre-tokenized word (already byte-to-unicode mapped)."""
    word = list(token[:-1]) + [token[-1] + "</w>"]
    while len(word) > 1:
        pairs = set(zip(word, word[1:]))
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        merged, i = [], 0
        while i < len(word):
            if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return word


def build_merges(words):
    """Merges that turn each word into one token. A new merge gets the highest rank
    so far, so it never changes how an earlier word is split: BPE only uses it once
    no lower-ranked pair is left, and earlier words never reach that point."""
    merges, ranks = [], {}
    for w in words:
        while True:
            parts = bpe(w, ranks)
            if len(parts) == 1:
                break
            pair = (parts[0], parts[1])
            ranks[pair] = len(merges)
            merges.append(pair)
    return merges


def write_tokenizer(folder, words, max_length=77):
    """Writes vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json."""
    os.makedirs(folder, exist_ok=True)
    byte_chars = list(bytes_to_unicode().values())
    merges = build_merges(words)
    vocab_list = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] \
        + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    assert len(vocab) == len(vocab_list), "duplicate vocabulary entry"
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump(special, f, indent=2)
    config = dict(special, tokenizer_class="CLIPTokenizer", model_max_length=max_length,
                  do_lower_case=True, errors="replace", add_prefix_space=False,
                  clean_up_tokenization_spaces=True)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return vocab


def check_tokenizer(folder, words, captions):
    """Loads the folder with transformers.CLIPTokenizer and checks that every word is one
    whole-word token and that captions tokenize to exactly their words' tokens."""
    from transformers import CLIPTokenizer
    tok = CLIPTokenizer.from_pretrained(folder)
    vocab = json.load(open(os.path.join(folder, "vocab.json"), encoding="utf-8"))
    for w in words:
        ids = tok(w, add_special_tokens=False).input_ids
        assert ids == [vocab[w + "</w>"]], f"word {w!r} tokenizes to {ids}"
    for c in captions:
        ids = tok(c).input_ids
        pieces = c.replace(",", " ,").split()
        want = [vocab["<|startoftext|>"]] + [vocab[p + "</w>"] for p in pieces] + [vocab["<|endoftext|>"]]
        assert ids == want, f"caption {c!r}: {ids} != {want}"
    return tok
