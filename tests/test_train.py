"""symgrad.train: optimisers, the mini-batch loop, progress, helpers and their errors."""

import numpy as np
import pytest

from symgrad import nn, reference, train
from symgrad.errors import InputError, SymgradError

# A quadratic bowl 1/2 (p - c)^T A (p - c) with a known minimum c.
A = np.array([[3.0, 0.5], [0.5, 1.0]])
C = np.array([1.5, -2.0])


def bowl(p, t=None):
    r = p - C
    return 0.5 * float(r @ A @ r), {"p": A @ r}


@pytest.mark.parametrize("opt, steps", [
    (train.SGD(0.3), 200),
    (train.Momentum(0.05, beta=0.9), 400),
    (train.Adam(0.05), 2000),
])
def test_optimisers_find_the_minimum(opt, steps):
    params = {"p": np.zeros(2)}
    for _ in range(steps):
        params = opt.step(params, bowl(params["p"])[1])
    np.testing.assert_allclose(params["p"], C, atol=1e-4)


def test_sgd_step_by_hand():
    p = {"W": np.array([[1.0, 2.0]]), "b": np.array([0.5])}
    g = {"W": np.array([[0.1, -0.4]]), "b": np.array([2.0])}
    out = train.SGD(0.25).step(p, g)
    assert out["W"].tolist() == [[1.0 - 0.025, 2.0 + 0.1]] and out["b"].tolist() == [0.0]
    assert p["W"].tolist() == [[1.0, 2.0]]                     # inputs untouched


def test_momentum_and_adam_by_hand():
    m = train.Momentum(0.1, beta=0.5)
    p = m.step({"w": np.array(2.0)}, {"w": np.array(1.0)})      # v = 1
    p = m.step(p, {"w": np.array(3.0)})                         # v = 0.5 + 3
    assert float(p["w"]) == pytest.approx(2.0 - 0.1 - 0.35)

    a = train.Adam(lr=0.01, beta1=0.5, beta2=0.75, eps=0.0 + 1e-12)
    g1, g2 = 2.0, -1.0
    p = a.step({"w": np.array(0.0)}, {"w": np.array(g1)})
    p = a.step(p, {"w": np.array(g2)})
    m1, v1 = 0.5 * g1, 0.25 * g1**2
    m2, v2 = 0.5 * m1 + 0.5 * g2, 0.75 * v1 + 0.25 * g2**2
    step1 = 0.01 * (m1 / 0.5) / (np.sqrt(v1 / 0.25) + 1e-12)
    step2 = 0.01 * (m2 / 0.75) / (np.sqrt(v2 / (1 - 0.75**2)) + 1e-12)
    assert float(p["w"]) == pytest.approx(-step1 - step2, rel=1e-12)
    a.reset()
    assert a.t == 0 and not a.state


def test_optimiser_errors():
    with pytest.raises(InputError, match="lr must be a positive"):
        train.SGD(0)
    with pytest.raises(InputError, match="beta"):
        train.Momentum(0.1, beta=1.0)
    with pytest.raises(InputError, match="no gradient for parameter 'b'"):
        train.SGD().step({"w": 1.0, "b": 2.0}, {"w": 1.0})
    with pytest.raises(InputError, match="not in params"):
        train.SGD().step({"w": 1.0}, {"w": 1.0, "v": 2.0})
    with pytest.raises(InputError, match=r"shape \(3,\) but the parameter has shape \(2,\)"):
        train.SGD().step({"w": np.zeros(2)}, {"w": np.zeros(3)})


# ---------------------------------------------------------------------------- fit


def mean_fit_problem():
    """Loss mean((x - t)^2) over the batch; records every batch it sees."""
    seen = []

    def vg(x, t, i):
        seen.append(i.copy())
        return float(np.mean((x - t) ** 2)), {"x": np.mean(2 * (x - t))}

    return vg, seen


def test_minibatches_cover_every_sample_once_per_epoch():
    vg, seen = mean_fit_problem()
    n = 23
    data = {"t": np.arange(n, dtype=float), "i": np.arange(n)}
    h = train.fit(vg, {"x": 0.0}, data, epochs=3, batch_size=5, optimizer=train.SGD(0.01), seed=1)
    assert h.epochs == 3
    per_epoch = len(seen) // 3
    assert per_epoch == 5                                       # 5+5+5+5+3
    epochs = [np.concatenate(seen[e * per_epoch:(e + 1) * per_epoch]) for e in range(3)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(n))
    assert [len(b) for b in seen[:per_epoch]] == [5, 5, 5, 5, 3]
    assert epochs[0].tolist() != epochs[1].tolist()             # reshuffled each epoch
    assert epochs[0].tolist() != list(range(n))


def test_shuffle_is_seeded_and_optional():
    def orders(**kw):
        vg, seen = mean_fit_problem()
        train.fit(vg, {"x": 0.0}, {"t": np.zeros(10), "i": np.arange(10)}, epochs=2, batch_size=4, **kw)
        return [b.tolist() for b in seen]

    assert orders(seed=5) == orders(seed=5)
    assert orders(seed=5) != orders(seed=6)
    assert orders(shuffle=False) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] * 2


def test_full_batch_uses_data_in_order():
    vg, seen = mean_fit_problem()
    train.fit(vg, {"x": 0.0}, {"t": np.zeros(6), "i": np.arange(6)}, epochs=2, batch_size=100)
    assert [b.tolist() for b in seen] == [list(range(6))] * 2


def test_history_loss_and_metrics():
    vg, _ = mean_fit_problem()
    t = np.array([1.0, 2.0, 6.0])
    calls = []
    h = train.fit(vg, {"x": 0.0}, {"t": t, "i": np.arange(3)}, epochs=30, optimizer=train.SGD(0.2),
                  metrics={"dist": lambda p: abs(float(p["x"]) - 3.0)},
                  callback=lambda e, p, hist: calls.append(e))
    assert len(h.loss) == 30 and len(h.metrics["dist"]) == 30 and calls == list(range(1, 31))
    assert h.loss[0] == pytest.approx(np.mean(t**2))           # loss before the first step of epoch 1
    assert h.loss[-1] < h.loss[0] and h.metrics["dist"][-1] < 1e-4
    assert float(h.params["x"]) == pytest.approx(3.0, abs=1e-4)
    assert h.seconds > 0 and "30 epochs" in repr(h) and "dist" in repr(h)


def test_epoch_loss_is_sample_weighted():
    losses = iter([1.0, 4.0])

    def vg(x, t):
        return next(losses), {"x": 0.0}

    h = train.fit(vg, {"x": 0.0}, {"t": np.zeros(5)}, epochs=1, batch_size=4, shuffle=False)
    assert h.loss == [pytest.approx((4 * 1.0 + 1 * 4.0) / 5)]


def test_callback_can_stop():
    vg, _ = mean_fit_problem()
    h = train.fit(vg, {"x": 0.0}, {"t": np.ones(4), "i": np.arange(4)}, epochs=50,
                  callback=lambda e, p, hist: e == 3)
    assert h.epochs == 3


def test_fit_does_not_modify_callers_params():
    vg, _ = mean_fit_problem()
    x0 = np.array(0.0)
    h = train.fit(vg, {"x": x0}, {"t": np.ones(4), "i": np.arange(4)}, epochs=5)
    assert float(x0) == 0.0 and float(h.params["x"]) != 0.0


def test_fit_matches_hand_written_sgd_on_an_mlp():
    """Full-batch fit with the reference gradient is exactly the hand-written loop."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 5)), np.eye(3)[rng.integers(0, 3, 40)]
    params = nn.init_params(nn.mlp([5, 8, 3]), seed=0)

    def vg(X, Y, **p):
        return reference.mlp_value_and_grad(p, X, Y)

    h = train.fit(vg, params, {"X": X, "Y": Y}, epochs=10, optimizer=train.SGD(0.5))
    p = dict(params)
    for _ in range(10):
        _, g = reference.mlp_value_and_grad(p, X, Y)
        p = {k: p[k] - 0.5 * g[k] for k in p}
    for k in p:
        np.testing.assert_array_equal(h.params[k], p[k])


def test_gradient_fn_trains_a_network():
    net = nn.mlp([2, 8, 2], activation="tanh")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    labels = (X[:, 0] * X[:, 1] > 0).astype(int)
    vg = train.gradient_fn(net)
    assert vg.param_names == ["W1", "b1", "W2", "b2"] and "symgrad" in vg.backend
    h = train.fit(vg, nn.init_params(net, seed=0), {"X": X, "Y": train.one_hot(labels, 2)}, epochs=300,
                  batch_size=50, optimizer=train.Adam(0.02), seed=0)
    out = train.output_fn(net)(X=X, **h.params)
    assert out.shape == (200, 2)
    assert train.accuracy(out, labels) > 0.9
    assert h.loss[-1] < h.loss[0]


# ---------------------------------------------------------------------------- progress


def test_progress_quiet_under_pytest(capsys):
    vg, _ = mean_fit_problem()
    train.fit(vg, {"x": 0.0}, {"t": np.ones(4), "i": np.arange(4)}, epochs=5)
    assert capsys.readouterr() == ("", "")


def test_progress_forced_goes_to_stderr_only(capsys):
    vg, _ = mean_fit_problem()
    train.fit(vg, {"x": 0.0}, {"t": np.ones(4), "i": np.arange(4)}, epochs=5, progress=True,
              metrics={"m": lambda p: 1.0})
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()                                   # not a terminal: one line per epoch
    assert len(lines) == 5 and "\r" not in err and err.endswith("\n")
    assert lines[0].startswith("epoch 1/5  loss ") and "ETA" in lines[0]
    assert lines[-1].startswith("epoch 5/5  loss ") and "  m 1" in lines[-1] and "ETA" not in lines[-1]


def test_progress_false_is_silent_even_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    vg, _ = mean_fit_problem()
    train.fit(vg, {"x": 0.0}, {"t": np.ones(4), "i": np.arange(4)}, epochs=5, progress=False)
    assert capsys.readouterr() == ("", "")


# ---------------------------------------------------------------------------- errors


def test_fit_errors():
    vg, _ = mean_fit_problem()
    good = {"t": np.ones(4), "i": np.arange(4)}
    with pytest.raises(InputError, match="same number of samples.*t: 4, i: 3"):
        train.fit(vg, {"x": 0.0}, {"t": np.ones(4), "i": np.arange(3)}, epochs=1)
    with pytest.raises(InputError, match="epochs"):
        train.fit(vg, {"x": 0.0}, good, epochs=0)
    with pytest.raises(InputError, match="batch_size"):
        train.fit(vg, {"x": 0.0}, good, epochs=1, batch_size=0)
    with pytest.raises(InputError, match="optimizer"):
        train.fit(vg, {"x": 0.0}, good, epochs=1, optimizer="adam")
    with pytest.raises(InputError, match="non-finite value in sample 2"):
        train.fit(vg, {"x": 0.0}, {"t": np.array([1, 2, np.nan, 4.0]), "i": np.arange(4)}, epochs=1)
    with pytest.raises(InputError, match="both a data array and a parameter"):
        train.fit(vg, {"t": 0.0}, good, epochs=1)
    with pytest.raises(InputError, match="callable"):
        train.fit(42, {"x": 0.0}, good, epochs=1)


def test_fit_missing_params_names_them():
    net = nn.mlp([2, 3, 2])
    params = nn.init_params(net)
    del params["b2"]
    with pytest.raises(InputError, match="params is missing 'b2'"):
        train.fit(train.gradient_fn(net), params, {"X": np.zeros((4, 2)), "Y": np.zeros((4, 2))}, epochs=1)


def test_fit_non_finite_loss_names_the_epoch():
    def vg(x, t):                                   # x grows by 1 per step; the loss is nan beyond 5
        return (float(x) if x <= 5 else float("nan")), {"x": -1.0}

    with pytest.raises(train.TrainingError, match=r"loss is nan at epoch 7, batch 1 \(samples 0..2\)") as info:
        train.fit(vg, {"x": 0.0}, {"t": np.ones(3)}, epochs=100, optimizer=train.SGD(1.0))
    assert info.value.history.epochs == 6 and isinstance(info.value, SymgradError)

# ---------------------------------------------------------------------------- helpers


def test_one_hot_and_accuracy():
    assert train.one_hot([1, 0], 3).tolist() == [[0, 1, 0], [1, 0, 0]]
    with pytest.raises(InputError, match="0..2"):
        train.one_hot([3], 3)
    with pytest.raises(InputError, match="integer labels"):
        train.one_hot([0.5])
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 5.0], [1.0, 3.0, 2.0]])
    assert train.accuracy(logits, [0, 2, 2]) == pytest.approx(2 / 3)
    assert train.accuracy(logits, train.one_hot([0, 2, 1], 3)) == 1.0
    probs = np.array([[0.2], [0.7], [0.51]])
    assert train.accuracy(probs, np.array([[0], [1], [1]]), logits=False) == 1.0
    assert train.accuracy(probs, np.array([[0], [1], [1]])) == pytest.approx(2 / 3)   # as logits all > 0
    assert train.predict(np.array([-1.0, 2.0])).tolist() == [0, 1]
    with pytest.raises(InputError, match="3 samples but targets have 2"):
        train.accuracy(logits, [0, 1])
