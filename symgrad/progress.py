"""Training progress on stderr: a rewritten bar on a terminal, one line per epoch elsewhere (notebooks, logs).

``mode`` is `fit`'s ``progress`` argument: None shows the bar only on a terminal and only
for runs longer than half a second; True always reports (the bar on a terminal, otherwise
one line per epoch); an int k > 1 reports like True but writes a line only every k-th epoch
(and the last) when not on a terminal; False never writes anything.

>>> import io
>>> p = Progress(True, epochs=2, stream=io.StringIO())
>>> p.update(1, 0.5, 0.75, {})
>>> p.stream.getvalue().split("  ")[:3]
['epoch 1/2', 'loss 0.5', 'val_loss 0.75']
"""

import sys
import time

from symgrad.errors import InputError


def _eta(seconds):
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d} min"
    return f"{seconds:.1f} s"


class Progress:
    """Reports each epoch's loss, validation loss, metrics, elapsed time and ETA to ``stream`` (default stderr)."""

    def __init__(self, mode, epochs, stream=None):
        if not (mode is None or isinstance(mode, bool) or (isinstance(mode, int) and mode >= 1)):
            raise InputError(f"progress must be None (a bar on a terminal), True, False or a positive int "
                             f"(report every k-th epoch); got {mode!r}")
        self.stream = sys.stderr if stream is None else stream
        self.mode, self.epochs = mode, epochs
        self.every = mode if type(mode) is int and mode > 1 else 1
        self.start = self.last = time.perf_counter()
        self.written = False
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = mode is not False and (mode is not None or self.tty)

    def _fields(self, epoch, loss, val_loss, metrics, now, final):
        elapsed = now - self.start
        parts = [f"epoch {epoch}/{self.epochs}", f"loss {loss:.4g}"]
        if val_loss is not None:
            parts.append(f"val_loss {val_loss:.4g}")
        parts += [f"{k} {v[-1]:.4g}" for k, v in metrics.items() if v]
        parts.append(_eta(elapsed))
        if not final:
            parts.append(f"ETA {_eta(elapsed / epoch * (self.epochs - epoch))}")
        return parts

    def update(self, epoch, loss, val_loss, metrics, final=False):
        """Report epoch ``epoch`` (``metrics``: name -> list of values; the last is shown)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        final = final or epoch == self.epochs
        if self.tty:
            # Automatic mode stays silent for short runs; an explicit progress=True always shows.
            if self.mode is None and now - self.start < 0.5 and not self.written:
                return
            if not final and self.written and now - self.last < 0.1:   # at most ten redraws a second
                return
            width = 20
            done = int(width * epoch / self.epochs)
            bar = "#" * done + "." * (width - done)
            self.stream.write(f"\r[{bar}] " + "  ".join(self._fields(epoch, loss, val_loss, metrics, now, final)) + " ")
        else:
            if epoch % self.every and not final:
                return
            self.stream.write("  ".join(self._fields(epoch, loss, val_loss, metrics, now, final)) + "\n")
        self.last = now
        self.stream.flush()
        self.written = True

    def note(self, text):
        """A line of its own (e.g. "early stopping at epoch 12"), after the bar if one is showing."""
        if not self.enabled or not (self.written or not self.tty):
            return
        if self.tty:
            self.stream.write("\n")
        self.stream.write(text + "\n")
        self.stream.flush()
        self.written = False

    def close(self):
        """End the bar's line on a terminal."""
        if self.written and self.tty:
            self.stream.write("\n")
            self.stream.flush()
        self.written = False
