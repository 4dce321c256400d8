#!/usr/bin/env python3
"""The naive baseline of `cargo bench --bench exec` (throughput section): a thread pool of
`--workers` threads, each taking a shot, POSTing it (on a 429 or 5xx: sleep 2 s and POST again),
polling every `--poll` seconds until it ends, and downloading the video. No journal, no limiter,
no budget: what a quick script would do. Talks to a simulator on loopback only.

`--dashscope` speaks DashScope's native protocol instead, the way a pool of threads each calling
Alibaba's `dashscope` SDK (`VideoSynthesis.async_call`, then `fetch` every `--poll` seconds)
would: the same sleeps, no shared rate.

`--honour-retry-after` makes a refused query wait its `Retry-After` (when longer than `--poll`)
before the next one, as shotlist does: the same pool under shotlist's rules.

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


def call(req, counter, headers=None):
    """(status, body bytes); transport errors count as status 0. `headers`, a dict, receives
    the answer's headers."""
    counter.add()
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        if headers is not None:
            # Header names are compared without case (the simulator sends `retry-after`).
            headers.update((k.lower(), v) for k, v in e.headers.items())
        return e.code, e.read()
    except OSError:
        return 0, b""


def native_body(tag, i):
    return json.dumps({
        "model": "wan2.7-t2v",
        "input": {"prompt": f"naive {tag} shot {i}: a slow pan over a quiet harbour at dawn"},
        "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 5,
                       "prompt_extend": False, "watermark": False, "seed": i},
    }).encode()


GATEWAY = {
    "submit": lambda url: f"{url}/v1/video/generations",
    "query": lambda url, task: f"{url}/v1/video/generations/{task}",
    "body": body,
    "task": lambda answer: answer["task_id"],
    "state": lambda answer: (answer.get("status"), answer.get("url")),
}

DASHSCOPE = {
    "submit": lambda url: f"{url}/api/v1/services/aigc/video-generation/video-synthesis",
    "query": lambda url, task: f"{url}/api/v1/tasks/{task}",
    "body": native_body,
    "task": lambda answer: answer["output"]["task_id"],
    "state": lambda answer: (answer["output"].get("task_status", "").lower(),
                             answer["output"].get("video_url")),
}


def one_shot(url, tag, i, poll, counter, proto, honour=False):
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json",
               "X-DashScope-Async": "enable"}
    while True:
        req = urllib.request.Request(proto["submit"](url), data=proto["body"](tag, i),
                                     headers=headers, method="POST")
        status, data = call(req, counter)
        if status == 200:
            task = proto["task"](json.loads(data))
            break
        if status == 429 or status >= 500:
            time.sleep(2)
            continue
        return False
    while True:
        time.sleep(poll)
        req = urllib.request.Request(proto["query"](url, task), headers=headers)
        answer = {}
        status, data = call(req, counter, answer)
        if status != 200:
            if honour and status == 429 and answer.get("retry-after", "").isdigit():
                time.sleep(max(0, int(answer["retry-after"]) - poll))
            continue
        state, video = proto["state"](json.loads(data))
        if state == "succeeded":
            status, _ = call(urllib.request.Request(video), counter)
            return status == 200
        if state == "failed":
            return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--shots", type=int, required=True)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--poll", type=float, default=0.5)
    ap.add_argument("--tag", default="run")
    ap.add_argument("--dashscope", action="store_true")
    ap.add_argument("--honour-retry-after", action="store_true")
    a = ap.parse_args()
    proto = DASHSCOPE if a.dashscope else GATEWAY
    counter = Counter()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=a.workers) as pool:
        ok = sum(pool.map(lambda i: one_shot(a.url, a.tag, i, a.poll, counter, proto,
                                                 a.honour_retry_after),
                          range(a.shots)))
    print(json.dumps({"wall": time.monotonic() - started, "ok": ok, "requests": counter.n}))


if __name__ == "__main__":
    main()
