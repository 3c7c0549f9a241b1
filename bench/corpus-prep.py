"""Python side of bench/corpus-prep.ts: HF `tokenizers` encode_batch over the passage texts our prep wrote.

Reads every passages.jsonl.gz given, encodes all texts once untimed (warm-up), then times `--repeat`
encode_batch calls over them (special tokens added, as Tokenizer.encode does by default). Prints JSON with
wall and CPU (all threads) seconds per call.
"""
import argparse
import gzip
import json
import resource
import time

from tokenizers import Tokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True, help="tokenizer.json")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("passages", nargs="+", help="passages.jsonl.gz files")
    args = ap.parse_args()
    tok = Tokenizer.from_file(args.tokenizer)
    texts = []
    for path in args.passages:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            texts.extend(json.loads(line)["text"] for line in f)
    tokens = sum(len(e.ids) for e in tok.encode_batch(texts))
    seconds, cpu_seconds = [], []
    for _ in range(args.repeat):
        cpu0, start = cpu_time(), time.perf_counter()
        tok.encode_batch(texts)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(cpu_time() - cpu0)
    print(json.dumps({"passages": len(texts), "tokens": tokens, "seconds": seconds, "cpu_seconds": cpu_seconds}))


def cpu_time():
    """User + system CPU seconds of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
