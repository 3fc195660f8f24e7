"""Deterministic multithreaded churn of dicts, lists, sets and strings.

Each worker builds and tears down containers of pseudo-random contents,
hands half of what it builds to the next worker through a queue (so those
objects die in another thread), and folds everything it sees into a digest.
The printed output depends only on the arguments, never on the scheduling,
so a run under LD_PRELOAD=libhmm.so must print exactly what a run without
it prints.  Run with PYTHONMALLOC=malloc so that every object goes through
malloc, and PYTHONHASHSEED=0.

Usage: python3 churn_threads.py [THREADS] [ROUNDS]
When HMM_SMOKE_CHECK=1, calls hmm_check() through ctypes at the end and
exits 3 if the heap is not sound (prints nothing more, so that the output
still compares equal).
"""
import hashlib
import json
import os
import queue
import random
import sys
import threading


def work(idx, rounds, inbox, outbox, results):
    rnd = random.Random(1000 + idx)
    digest = hashlib.sha256()
    keep = []
    for r in range(rounds):
        # a dict of lists and strings of many sizes
        d = {}
        for _ in range(rnd.randint(50, 400)):
            k = "".join(rnd.choice("abcdefgh") for _ in range(rnd.randint(1, 12)))
            d.setdefault(k, []).append(rnd.random() * rnd.randint(1, 10 ** 6))
        big = [x * 2 for v in d.values() for x in v]
        big.sort()
        s = set(int(x) % 997 for x in big)
        text = ",".join("%s=%d" % (k, len(v)) for k, v in sorted(d.items()))
        blob = json.dumps({"r": r, "d": sorted(d)[:50], "n": len(big)}, sort_keys=True)
        digest.update(text.encode())
        digest.update(blob.encode())
        digest.update(repr(sorted(s)).encode())
        # grow and shrink a long-lived list (realloc of big arrays)
        keep.extend(big)
        if len(keep) > 50000:
            del keep[: len(keep) // 2 + rnd.randint(0, 100)]
        # some large strings and bytearrays
        b = bytearray(rnd.randint(1, 300000))
        b[::4096] = b"x" * len(b[::4096])
        digest.update(bytes(b[-64:]))
        # hand half of it to the next worker; it will free it there
        outbox.put((d, big[: len(big) // 2], text))
        od, obig, otext = inbox.get()
        digest.update(("%d:%d:%s" % (len(od), len(obig), otext[:100])).encode())
        del od, obig, otext, d, big, s, text, blob, b
    digest.update(repr(keep[-100:]).encode())
    results[idx] = digest.hexdigest()


def main():
    nthreads = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 150
    queues = [queue.Queue() for _ in range(nthreads)]
    results = [None] * nthreads
    threads = [
        threading.Thread(
            target=work,
            args=(i, rounds, queues[i], queues[(i + 1) % nthreads], results),
        )
        for i in range(nthreads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in enumerate(results):
        print("worker %d %s" % (i, r))
    # and a large single-threaded structure at the end
    table = {i: [str(i)] * (i % 7) for i in range(200000)}
    print("table", sum(len(v) for v in table.values()))
    if os.environ.get("HMM_SMOKE_CHECK") == "1":
        import ctypes

        if ctypes.CDLL(None).hmm_check() != 0:
            sys.exit(3)


if __name__ == "__main__":
    main()
