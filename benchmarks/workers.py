"""Worker processes for timing engines apart from each other.

A worker is set up once (compile, export, session) and then answers, one line at a time on
stdin, "time n calls" with a JSON list of n call times in seconds. The coordinator asks the
workers in turn, so only one computes at a time, and waits a little after each block: thread
pools that spin while waiting for work (ONNX Runtime's, OpenMP's) wind down before the next
engine's block instead of taking its cores.
"""
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager


class Worker:
    """A child process that prints one JSON line when ready, then times calls on request."""

    def __init__(self, argv, env=None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)
        self.info = None

    def ready(self):
        """The worker's first line (its set-up report) as a dict; raises if it died instead."""
        if self.info is None:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"worker {self.proc.args[2:]} exited with code "
                                   f"{self.proc.wait()} before it was ready")
            self.info = json.loads(line)
        return self.info

    def time(self, n):
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.proc.args[2:]} exited with code {self.proc.wait()}")
        return json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def serve(call, stdin=sys.stdin, stdout=sys.stdout):
    """Worker side: answer each line "n" with the times of n calls of ``call``, until EOF."""
    for line in stdin:
        times = []
        for _ in range(int(line)):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        stdout.write(json.dumps(times) + "\n")
        stdout.flush()


def interleave(workers, seconds, rounds, pause, min_calls=3, max_calls=5000):
    """Call times (seconds) of each worker, taking turns in ``rounds`` blocks of about
    seconds/rounds each and sleeping ``pause`` seconds after every block."""
    per_call = {}
    for name, w in workers.items():
        per_call[name] = max(statistics.median(w.time(3)), 1e-6)  # also warms up
        time.sleep(pause)
    times = {name: [] for name in workers}
    for _ in range(rounds):
        for name, w in workers.items():
            n = int(min(max_calls, max(min_calls, seconds / rounds / per_call[name])))
            times[name] += w.time(n)
            time.sleep(pause)
    return times


def percentile(values, q):
    """The q-th percentile (0..100) of values, by linear interpolation between ranks."""
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@contextmanager
def busy_core(enabled=True):
    """Keep one core busy with a plain Python loop in another process while the block runs;
    yields its pid (None when not enabled). The process is stopped on leaving, even on error."""
    if not enabled:
        yield None
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                            env=dict(os.environ, PYTHONPATH=""))
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()
