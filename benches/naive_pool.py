#!/usr/bin/env python3
"""The naive baseline of `cargo bench --bench exec` (throughput section): a thread pool of
`--workers` threads, each taking a shot, POSTing it (on a 429 or 5xx: sleep 2 s and POST again),
polling every `--poll` seconds until it ends, and downloading the video. No journal, no limiter,
no budget: what a quick script would do. Talks to a simulator on loopback only.

Prints one JSON line: {"wall": seconds, "ok": shots succeeded, "requests": HTTP requests sent}.
"""

import argparse
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

KEY = "sk-naive-bench"


def body(tag, i):
    prompt = f"naive {tag} shot {i}: a slow pan over a quiet harbour at dawn"
    return json.dumps({
        "model": "wan2.7-t2v-2026-04-25",
        "prompt": prompt,
        "duration": 5,
        "metadata": {
            "input": {"prompt": prompt},
            "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 5,
                           "prompt_extend": False, "watermark": False, "seed": i},
        },
    }).encode()


class Counter:
    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    def add(self):
        with self.lock:
            self.n += 1


def call(req, counter):
    """(status, body bytes); transport errors count as status 0."""
    counter.add()
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def one_shot(url, tag, i, poll, counter):
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    while True:
        req = urllib.request.Request(f"{url}/v1/video/generations", data=body(tag, i),
                                     headers=headers, method="POST")
        status, data = call(req, counter)
        if status == 200:
            task = json.loads(data)["task_id"]
            break
        if status == 429 or status >= 500:
            time.sleep(2)
            continue
        return False
    while True:
        time.sleep(poll)
        req = urllib.request.Request(f"{url}/v1/video/generations/{task}", headers=headers)
        status, data = call(req, counter)
        if status != 200:
            continue
        answer = json.loads(data)
        if answer.get("status") == "succeeded":
            status, _ = call(urllib.request.Request(answer["url"]), counter)
            return status == 200
        if answer.get("status") == "failed":
            return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--shots", type=int, required=True)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--poll", type=float, default=0.5)
    ap.add_argument("--tag", default="run")
    a = ap.parse_args()
    counter = Counter()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=a.workers) as pool:
        ok = sum(pool.map(lambda i: one_shot(a.url, a.tag, i, a.poll, counter), range(a.shots)))
    print(json.dumps({"wall": time.monotonic() - started, "ok": ok, "requests": counter.n}))


if __name__ == "__main__":
    main()
