"""Worker processes for timing engines apart from each other.

A worker is set up once (compile, export, session) and then answers, one line at a time on
stdin, "time n calls" with a JSON list of n call times in seconds. The coordinator asks the
workers in turn, so only one computes at a time, and waits a little after each block: thread
pools that spin while waiting for work (ONNX Runtime's, OpenMP's) wind down before the next
engine's block instead of taking its cores.
"""
import json
import os
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

    def time(self, n, seconds=None):
        """Times of n calls; with ``seconds``, of fewer when that much time has passed."""
        self.proc.stdin.write(f"{n}\n" if seconds is None else f"{n} {seconds}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.proc.args[2:]} exited with code {self.proc.wait()}")
        return json.loads(line)

    def kill(self):
        """Stop at once (on an error or interrupt: no block or set-up is waited for)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        """Let the worker finish and exit (end of its input)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def serve(call, stdin=sys.stdin, stdout=sys.stdout, min_calls=3):
    """Worker side: answer each line "n" with the times of n calls of ``call``, and "n s" with
    those of up to n calls that stop once s seconds have passed (after at least min_calls)."""
    for line in stdin:
        n, *budget = line.split()
        end = time.perf_counter() + float(budget[0]) if budget else None
        times = []
        while len(times) < int(n):
            t0 = time.perf_counter()
            call()
            t1 = time.perf_counter()
            times.append(t1 - t0)
            if end is not None and t1 >= end and len(times) >= min_calls:
                break
        stdout.write(json.dumps(times) + "\n")
        stdout.flush()


def interleave(workers, seconds, rounds, pause, warmup=3, max_calls=5000):
    """Call times (seconds) of each worker, taking turns in ``rounds`` blocks of about
    seconds/rounds each and sleeping ``pause`` seconds after every block. A block ends by
    time, not by a count guessed beforehand, so a call that slows down mid-run (a core taken
    by another process) cannot stretch it."""
    for w in workers.values():
        w.time(warmup)
        time.sleep(pause)
    times = {name: [] for name in workers}
    for _ in range(rounds):
        for name, w in workers.items():
            times[name] += w.time(max_calls, seconds / rounds)
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
