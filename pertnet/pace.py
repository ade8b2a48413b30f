"""A line at most every so many seconds while a long loop runs, with the time so far and the time left:
what the long steps say (reading, writing, scoring, calibrating), so that none is silent for minutes."""
import time


EVERY = 30.0  # seconds between two lines, unless a loop says otherwise


class Pace:
    """`tick(done, total, what)` after each step of a loop: logs `what`, the seconds so far and those left
    (from the pace so far) where `every` seconds (default EVERY) have passed since the last line."""

    def __init__(self, log, every=None):
        self.log, self.every = log, EVERY if every is None else every
        self.started = self.said = time.perf_counter()

    def tick(self, done, total, what):
        now = time.perf_counter()
        if done and now - self.said >= self.every:
            elapsed = now - self.started
            self.log(f"{what}, {elapsed:.0f}s, about {elapsed / done * (total - done):.0f}s left")
            self.said = now
