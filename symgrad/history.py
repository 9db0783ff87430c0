"""`History`: what `symgrad.train.fit` records per epoch, and a matplotlib plot of it.

>>> h = History(loss=[1.0, 0.5], val_loss=[1.2, 0.8], metrics={"acc": [0.5, 0.75]})
>>> h
History(2 epochs, loss 1 -> 0.5, val_loss 0.8, acc 0.75; 0.00 s)
"""

from dataclasses import dataclass, field

PLOT_HINT = "History.plot needs matplotlib, which is optional: pip install 'symgrad[plot]' (or pip install matplotlib)"


@dataclass
class History:
    """Per-epoch records of a `fit` run, the final parameters and the wall time.

    - ``loss``: each epoch's sample-weighted mean training loss (of the batches as they
      were trained, before each step);
    - ``metrics``: name -> per-epoch values (on the training data for metrics that take data);
    - ``val_loss``, ``val_metrics``: the same on the validation data, after each epoch
      (empty without ``validation``);
    - ``lr``: the optimiser's learning rate in each epoch (when it has one);
    - ``batch_loss``: every batch's loss in order (with ``record_batches=True``);
    - ``params``: the final parameters, or the best epoch's with ``early_stopping``;
    - ``best_epoch``: the epoch (from 1) with the lowest monitored loss, with ``early_stopping``;
    - ``stopped_early``: True when early stopping ended the run before ``epochs``;
    - ``seconds``: wall time.
    """

    loss: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    seconds: float = 0.0
    val_loss: list = field(default_factory=list)
    val_metrics: dict = field(default_factory=dict)
    lr: list = field(default_factory=list)
    batch_loss: list = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    @property
    def epochs(self):
        """The number of epochs completed."""
        return len(self.loss)

    def __repr__(self):
        if not self.loss:
            return "History(0 epochs)"
        parts = [f"loss {self.loss[0]:.4g} -> {self.loss[-1]:.4g}"]
        if self.val_loss:
            parts.append(f"val_loss {self.val_loss[-1]:.4g}")
        parts += [f"{k} {v[-1]:.4g}" for k, v in self.metrics.items() if v]
        parts += [f"val_{k} {v[-1]:.4g}" for k, v in self.val_metrics.items() if v]
        if self.best_epoch is not None:
            parts.append(f"best epoch {self.best_epoch}" + (" (stopped early)" if self.stopped_early else ""))
        return f"History({self.epochs} epochs, {', '.join(parts)}; {self.seconds:.2f} s)"

    def plot(self, ax=None, logy=False, metrics=False):
        """Draw the training and validation loss per epoch with matplotlib; returns the Axes.

        ``ax``: an existing Axes (default: a new figure); ``logy``: a logarithmic loss axis;
        ``metrics``: also draw the metrics (and validation metrics) on a second y-axis. The
        best epoch of early stopping is marked. Raises ImportError saying how to install
        matplotlib when it is missing.

        >>> ax = History(loss=[1.0, 0.5], val_loss=[1.2, 0.8]).plot()   # doctest: +SKIP
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError(PLOT_HINT) from exc
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        epochs = range(1, self.epochs + 1)
        ax.plot(epochs, self.loss, label="training loss")
        if self.val_loss:
            ax.plot(range(1, len(self.val_loss) + 1), self.val_loss, label="validation loss")
        if self.best_epoch is not None:
            ax.axvline(self.best_epoch, color="grey", linestyle=":", label=f"best epoch {self.best_epoch}")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        handles, labels = ax.get_legend_handles_labels()
        if metrics and (self.metrics or self.val_metrics):
            ax2 = ax.twinx()
            for name, values in self.metrics.items():
                ax2.plot(range(1, len(values) + 1), values, linestyle="--", label=name)
            for name, values in self.val_metrics.items():
                ax2.plot(range(1, len(values) + 1), values, linestyle="--", label=f"val_{name}")
            ax2.set_ylabel("metric")
            h2, l2 = ax2.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        ax.legend(handles, labels)
        return ax
