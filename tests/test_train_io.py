"""Saving and loading parameters, History.plot, the progress report, and the threads benchmark script."""

import io
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from symgrad import nn, train
from symgrad.errors import InputError
from symgrad.history import History
from symgrad.progress import Progress

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")


# ---------------------------------------------------------------------------- save / load


def test_save_load_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(4, 3)).astype(np.float32), "b1": np.zeros((1, 3)),
              "file": rng.normal(size=(3, 2)), "allow_pickle": np.arange(3, dtype=np.int16), "s": np.array(2.5)}
    before = {k: v.copy() for k, v in params.items()}
    path = train.save(params, tmp_path / "p")
    assert path == str(tmp_path / "p.npz") and os.path.exists(path)
    back = train.load(path)
    assert list(back) == list(params)                                   # names, in order
    for k, v in params.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        assert back[k].tobytes() == v.tobytes()                         # bit for bit
        np.testing.assert_array_equal(params[k], before[k])              # the input is untouched
    with np.load(path) as f:                                            # an ordinary .npz
        assert sorted(f.files) == sorted(params)
    assert train.save(params, tmp_path / "q.npz") == str(tmp_path / "q.npz")


def test_load_checks_the_file_fits_a_network(tmp_path):
    net = nn.mlp([4, 3, 2])
    p = nn.init_params(net, seed=1)
    path = train.save(p, tmp_path / "net.npz")
    back = train.load(path, like=net)
    assert list(back) == ["W1", "b1", "W2", "b2"]
    assert train.load(path, like=p).keys() == p.keys()
    with pytest.raises(InputError, match=r"parameter 'W1' has shape \(4, 3\) in .* but \(5, 3\) is expected"):
        train.load(path, like=nn.mlp([5, 3, 2]))
    with pytest.raises(InputError, match="has no parameter 'W3'"):
        train.load(path, like=nn.mlp([4, 3, 3, 2]))
    small = train.save({"W1": p["W1"], "b1": p["b1"], "W2": p["W2"], "b2": p["b2"], "extra": np.zeros(1)},
                       tmp_path / "extra")
    with pytest.raises(InputError, match="holds 'extra', which is not a parameter"):
        train.load(small, like=net)


def test_save_load_errors(tmp_path):
    with pytest.raises(InputError, match="no parameter file"):
        train.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(InputError, match="cannot read parameters"):
        train.load(bad)
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(InputError, match="single array"):
        train.load(tmp_path / "one.npy")
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(InputError, match="cannot read parameters"):           # nothing is unpickled
        train.load(tmp_path / "obj.npz")
    with pytest.raises(InputError, match="numeric arrays only"):
        train.save({"a": np.array(["x"], dtype=object)}, tmp_path / "o")
    with pytest.raises(InputError, match="names must be non-empty strings"):
        train.save({"a/b": np.zeros(1)}, tmp_path / "o")
    with pytest.raises(InputError, match="non-empty dict"):
        train.save({}, tmp_path / "o")
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(InputError, match="holds no parameters"):
        train.load(tmp_path / "empty.npz")


def test_saved_parameters_continue_training(tmp_path):
    net = nn.mlp([3, 4, 2])
    rng = np.random.default_rng(2)
    d = {"X": rng.normal(size=(20, 3)), "Y": train.one_hot(rng.integers(0, 2, 20), 2)}
    vg = train.gradient_fn(net)
    h = train.fit(vg, nn.init_params(net), d, epochs=3, optimizer=train.SGD(0.5))
    path = train.save(h.params, tmp_path / "ckpt")
    a = train.fit(vg, h.params, d, epochs=2, optimizer=train.SGD(0.5)).params
    b = train.fit(vg, train.load(path, like=net), d, epochs=2, optimizer=train.SGD(0.5)).params
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


# ---------------------------------------------------------------------------- History.plot


def test_history_plot_draws_the_curves():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = History(loss=[1.0, 0.6, 0.4], val_loss=[1.1, 0.7, 0.65], metrics={"acc": [0.5, 0.7, 0.8]},
                val_metrics={"acc": [0.4, 0.6, 0.7]}, best_epoch=3)
    ax = h.plot(metrics=True, logy=True)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["training loss"].get_ydata()) == h.loss
    assert list(lines["validation loss"].get_ydata()) == h.val_loss
    assert list(lines["training loss"].get_xdata()) == [1, 2, 3]
    assert "best epoch 3" in lines and ax.get_yscale() == "log"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "acc" in legend and "val_acc" in legend
    plt.close("all")


def test_history_plot_says_how_to_install_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'symgrad\[plot\]'"):
        History(loss=[1.0]).plot()


# ---------------------------------------------------------------------------- progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run_fit(**kw):
    def vg(x, t):
        return float(np.mean((x - t) ** 2)), {"x": np.mean(2 * (x - t))}

    return train.fit(vg, {"x": 0.0}, {"t": np.ones(4)}, epochs=5, optimizer=train.SGD(0.1), **kw)


def test_progress_bar_on_a_terminal(monkeypatch):
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    run_fit(progress=True, validation={"t": np.full(2, 2.0)}, metrics={"m": lambda p: 1.0})
    out = term.getvalue()
    assert out.startswith("\r[") and out.endswith("\n") and out.count("\n") == 1
    assert "epoch 5/5" in out and "val_loss " in out and "  m 1" in out
    first = out.split("\r")[1]
    assert "epoch 1/5" in first and "ETA" in first                      # an ETA until the last epoch


def test_progress_default_is_quiet_for_short_runs_on_a_terminal(monkeypatch):
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    run_fit()
    assert term.getvalue() == ""


def test_progress_lines_every_k_epochs_and_early_stopping_note(capsys):
    run_fit(progress=2)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 2/5", "epoch 4/5", "epoch 5/5"]
    run_fit(progress=True, validation={"t": np.full(2, 0.2)}, early_stopping=1)   # val loss rises after epoch 1
    err = capsys.readouterr().err
    assert "early stopping at epoch 2: no improvement for 1 epochs; best epoch 1" in err


def test_progress_writes_only_to_the_stream_it_is_given():
    stream = io.StringIO()
    p = Progress(True, epochs=3, stream=stream)
    p.update(1, 0.25, None, {"acc": [0.5]})
    assert stream.getvalue().startswith("epoch 1/3  loss 0.25  acc 0.5  ") and "ETA" in stream.getvalue()


# ---------------------------------------------------------------------------- the threads benchmark


def test_bench_threads_runs():
    pytest.importorskip("threadpoolctl")
    r = subprocess.run([sys.executable, os.path.join(BENCH, "bench_threads.py"), "--quick", "--threads", "1,2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "s/epoch" in r.stdout and "full" in r.stdout
