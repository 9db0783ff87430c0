"""fit's options against hand computations in plain NumPy: weight decay, AdamW, penalties, dtypes,
validation, early stopping, schedules, clipping, per-batch losses, gradient_fn for any model."""

import math
import warnings

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad import nn, reference, schedules, train
from symgrad.errors import InputError

A = np.array([[3.0, 0.5], [0.5, 1.0]])
C = np.array([1.5, -2.0])


def bowl(p, t):
    """1/2 (p - c)^T A (p - c); t is a dummy data array."""
    r = p - C
    return 0.5 * float(r @ A @ r), {"p": A @ r}


def dummy():
    return {"t": np.zeros(3)}


def mlp_problem(seed=0, n=40, sizes=(5, 8, 3)):
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(n, sizes[0])), np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]
    net = nn.mlp(list(sizes))
    return net, X, Y


def ref_vg(X, Y, **p):
    return reference.mlp_value_and_grad(p, X, Y)


# ---------------------------------------------------------------------------- weight decay


def test_weight_decay_adds_lambda_p_before_the_step():
    lam, lr = 0.3, 0.1
    h = train.fit(bowl, {"p": np.array([1.0, 1.0])}, dummy(), epochs=5, optimizer=train.SGD(lr), weight_decay=lam)
    p = np.array([1.0, 1.0])
    for _ in range(5):
        g = A @ (p - C) + lam * p
        p = p - lr * g
    np.testing.assert_allclose(h.params["p"], p, rtol=1e-14)
    # the minimum moves to (A + λI)^-1 A c
    h = train.fit(bowl, {"p": np.zeros(2)}, dummy(), epochs=400, optimizer=train.SGD(0.2), weight_decay=lam)
    np.testing.assert_allclose(h.params["p"], np.linalg.solve(A + lam * np.eye(2), A @ C), atol=1e-10)


def test_weight_decay_per_parameter_on_an_mlp():
    net, X, Y = mlp_problem()
    init = nn.init_params(net, seed=0)
    wd = {"W1": 0.01, "W2": 0.02}
    h = train.fit(ref_vg, init, {"X": X, "Y": Y}, epochs=4, optimizer=train.Momentum(0.1, beta=0.5), weight_decay=wd)
    p, v = dict(init), {}
    for _ in range(4):
        _, g = reference.mlp_value_and_grad(p, X, Y)
        g = {k: g[k] + wd.get(k, 0.0) * p[k] for k in g}
        v = {k: 0.5 * v[k] + g[k] if k in v else g[k] for k in g}
        p = {k: p[k] - 0.1 * v[k] for k in p}
    for k in p:
        np.testing.assert_allclose(h.params[k], p[k], rtol=1e-13, atol=1e-15)


def test_adamw_two_steps_by_hand():
    lr, b1, b2, eps, lam = 0.01, 0.8, 0.9, 1e-8, 0.1
    opt = train.AdamW(lr, beta1=b1, beta2=b2, eps=eps, weight_decay={"w": lam})
    p, grads = {"w": np.array([1.0, -2.0]), "b": np.array([0.5])}, [
        {"w": np.array([0.5, 1.0]), "b": np.array([2.0])}, {"w": np.array([-1.0, 0.25]), "b": np.array([1.0])}]
    w, b = p["w"].copy(), p["b"].copy()
    mw = vw = np.zeros(2)
    mb = vb = np.zeros(1)
    for t, g in enumerate(grads, start=1):
        p = opt.step(p, g)
        mw, vw = b1 * mw + (1 - b1) * g["w"], b2 * vw + (1 - b2) * g["w"] ** 2
        mb, vb = b1 * mb + (1 - b1) * g["b"], b2 * vb + (1 - b2) * g["b"] ** 2
        w = w - lr * lam * w - lr * (mw / (1 - b1**t)) / (np.sqrt(vw / (1 - b2**t)) + eps)
        b = b - lr * (mb / (1 - b1**t)) / (np.sqrt(vb / (1 - b2**t)) + eps)        # not decayed
    np.testing.assert_allclose(p["w"], w, rtol=1e-13)
    np.testing.assert_allclose(p["b"], b, rtol=1e-13)
    with pytest.raises(InputError, match="AdamW weight_decay names 'W9'"):
        train.AdamW(weight_decay={"W9": 0.1}).step({"w": np.zeros(1)}, {"w": np.zeros(1)})
    with pytest.raises(InputError, match=">= 0"):
        train.AdamW(weight_decay=-1.0)


def test_regularize_adds_l2_and_l1_to_the_loss():
    net, X, Y = mlp_problem(seed=2)
    p = nn.init_params(net, seed=3)
    lam2, lam1 = 0.05, 0.02
    reg = nn.regularize(net, l2=lam2, l1=lam1)
    assert "L2(0.05) + L1(0.02) on W1, W2" in reg.loss_name and reg.params == net.params
    loss, g = train.gradient_fn(reg)(X=X, Y=Y, **p)
    ref_loss, ref_g = reference.mlp_value_and_grad(p, X, Y)
    weights = ["W1", "W2"]
    assert loss == pytest.approx(ref_loss + sum(lam2 / 2 * np.sum(p[k] ** 2) + lam1 * np.sum(np.abs(p[k])) for k in weights),
                                 rel=1e-12)
    for k in p:
        expect = ref_g[k] + (lam2 * p[k] + lam1 * np.sign(p[k]) if k in weights else 0)
        np.testing.assert_allclose(g[k], expect, rtol=1e-10, atol=1e-13)
    # the penalty is in the expression, so check_grads sees it (finite differences, forward/reverse)
    sg.check_grads(reg.loss, wrt=list(reg.params), at={"X": X[:6], "Y": Y[:6], **p}, modes=("fd", "fwd-rev"))
    # the L2 gradient is fit's weight decay on the same parameters
    only_l2 = train.gradient_fn(nn.regularize(net, l2=lam2, params=["W1"]))(X=X, Y=Y, **p)[1]
    np.testing.assert_allclose(only_l2["W1"], ref_g["W1"] + lam2 * p["W1"], rtol=1e-10)
    np.testing.assert_allclose(only_l2["W2"], ref_g["W2"], rtol=1e-10)
    assert nn.regularize(net) is net
    with pytest.raises(InputError, match="'W7' is not a parameter"):
        nn.regularize(net, l2=0.1, params=["W7"])
    with pytest.raises(InputError, match=">= 0"):
        nn.regularize(net, l2=-0.1)


def test_penalty_expressions():
    W = sp.MatrixSymbol("W", 2, 2)
    w = sp.Symbol("w", real=True)
    assert nn.l2_penalty([W], 0.5) == sp.Trace(W.T * W) / 4
    assert sp.diff(nn.l1_penalty([w], 3), w).subs(w, -2) == -3
    with pytest.raises(InputError, match="parameter symbols"):
        nn.l2_penalty([W * W], 1)


# ---------------------------------------------------------------------------- gradient_fn


def test_gradient_fn_of_a_scalar_expression_averages_over_the_batch():
    w, x, t = sp.symbols("w x t")
    vg = train.gradient_fn((w * x - t) ** 2, wrt=[w])
    xs, ts = np.array([1.0, 2.0, -1.0]), np.array([0.5, 1.0, 2.0])
    loss, g = vg(w=0.7, x=xs, t=ts)
    assert loss == pytest.approx(np.mean((0.7 * xs - ts) ** 2), rel=1e-14)
    assert g["w"] == pytest.approx(np.mean(2 * (0.7 * xs - ts) * xs), rel=1e-14)
    assert vg.param_names == ["w"] and isinstance(vg.compiled, sg.CompiledFunction)
    h = train.fit(vg, {"w": 0.0}, {"x": xs, "t": ts}, epochs=300, optimizer=train.SGD(0.2))
    assert float(h.params["w"]) == pytest.approx(xs @ ts / (xs @ xs), rel=1e-9)   # least squares
    assert train.gradient_fn((w * x - t) ** 2, wrt=[w], reduce="sum")(w=0.7, x=xs, t=ts)[0] == pytest.approx(
        np.sum((0.7 * xs - ts) ** 2))


def test_gradient_fn_of_a_compiled_function_and_a_matrix_expression():
    net, X, Y = mlp_problem(seed=4)
    p = nn.init_params(net, seed=1)
    f = sg.compile(net.loss, wrt=list(net.params), args=[net.inputs, net.targets])
    vg = train.gradient_fn(f)
    assert vg.compiled is f and vg.param_names == ["W1", "b1", "W2", "b2"]
    loss = net.loss + nn.l2_penalty(net.params[:1], 0.1)
    vg2 = train.gradient_fn(loss, wrt=net.params, args=[net.inputs, net.targets])
    ref_loss, ref_g = reference.mlp_value_and_grad(p, X, Y)
    l2, g2 = vg2(X=X, Y=Y, **p)
    assert l2 == pytest.approx(ref_loss + 0.05 * np.sum(p["W1"] ** 2), rel=1e-12)
    np.testing.assert_allclose(g2["W1"], ref_g["W1"] + 0.1 * p["W1"], rtol=1e-10)
    assert vg2.loss_fn(X=X, Y=Y, **p) == pytest.approx(l2, rel=1e-12)
    with pytest.raises(InputError, match="needs wrt"):
        train.gradient_fn(loss)
    with pytest.raises(InputError, match="compiled already"):
        train.gradient_fn(f, wrt=net.params)
    with pytest.raises(InputError, match="can go to fit as it is"):
        train.gradient_fn(lambda **v: (0.0, {}))


# ---------------------------------------------------------------------------- dtypes


def test_float32_stays_float32_end_to_end():
    net, X, Y = mlp_problem(seed=5)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    init = nn.init_params(net, seed=0, dtype=np.float32)
    assert all(v.dtype == np.float32 for v in init.values())
    seen = []

    def spy(epoch, params, history):
        seen.extend(v.dtype for v in params.values())

    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # no MixedPrecisionWarning
        h = train.fit(train.gradient_fn(net), init, {"X": X32, "Y": Y32}, epochs=3, batch_size=16,
                      optimizer=train.Adam(1e-2), weight_decay=1e-3, clip_norm=5.0,
                      validation={"X": X32[:10], "Y": Y32[:10]}, early_stopping=5, callback=spy)
    assert set(seen) == {np.dtype(np.float32)}
    assert all(v.dtype == np.float32 for v in h.params.values())
    # float32 training follows the float64 one to float32 accuracy
    h64 = train.fit(train.gradient_fn(net), {k: v.astype(np.float64) for k, v in init.items()}, {"X": X, "Y": Y},
                    epochs=3, batch_size=16, optimizer=train.Adam(1e-2), weight_decay=1e-3, clip_norm=5.0)
    for k in init:
        np.testing.assert_allclose(h.params[k], h64.params[k], atol=2e-4)


def test_mixed_precision_promotes_and_says_so():
    net, X, Y = mlp_problem(seed=6)
    init = nn.init_params(net, seed=0, dtype=np.float32)
    with pytest.warns(train.MixedPrecisionWarning, match=r"float32: params\['W1'\].*float64: data\['X'\].*training in float64"):
        h = train.fit(train.gradient_fn(net), init, {"X": X, "Y": Y}, epochs=2)
    assert all(v.dtype == np.float64 for v in h.params.values())
    assert all(v.dtype == np.float32 for v in init.values())           # the caller's arrays are untouched
    # Python numbers and integer arrays adopt the others' dtype: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = train.fit(bowl, {"p": np.array([0, 0])}, {"t": np.zeros(3, np.float32)}, epochs=1, optimizer=train.SGD(0.1))
    assert h.params["p"].dtype == np.float32
    h = train.fit(bowl, {"p": np.array([0, 0])}, {"t": np.arange(3)}, epochs=1)
    assert h.params["p"].dtype == np.float64


def test_optimisers_keep_each_parameters_dtype():
    for opt in (train.SGD(0.1), train.Momentum(0.1), train.Adam(0.1), train.AdamW(0.1)):
        out = opt.step({"a": np.ones(2, np.float32), "b": np.ones(2)}, {"a": np.ones(2), "b": np.ones(2, np.float32)})
        assert out["a"].dtype == np.float32 and out["b"].dtype == np.float64, opt


def test_fit_never_modifies_inputs():
    net, X, Y = mlp_problem(seed=7)
    init = nn.init_params(net, seed=0)
    copies = [{k: v.copy() for k, v in d.items()} for d in (init, {"X": X, "Y": Y})]
    train.fit(train.gradient_fn(net), init, {"X": X, "Y": Y}, epochs=2, batch_size=8, weight_decay=0.1,
              validation={"X": X, "Y": Y}, early_stopping=1, clip_norm=0.1, optimizer=train.Adam(0.1))
    for original, copy in zip((init, {"X": X, "Y": Y}), copies):
        for k in copy:
            np.testing.assert_array_equal(original[k], copy[k])


# ---------------------------------------------------------------------------- validation and early stopping


def test_validation_loss_and_metrics_per_epoch():
    net, X, Y = mlp_problem(seed=8, n=60)
    Xv, Yv = X[40:], Y[40:]
    per_epoch = []
    h = train.fit(ref_vg, nn.init_params(net, seed=0), {"X": X[:40], "Y": Y[:40]}, epochs=4, batch_size=10,
                  optimizer=train.Adam(0.05), validation={"X": Xv, "Y": Yv},
                  metrics={"acc": train.accuracy_metric(net), "norm": lambda p: float(np.abs(p["W1"]).sum())},
                  callback=lambda e, p, hist: per_epoch.append(dict(p)))
    assert len(h.val_loss) == 4 and set(h.val_metrics) == {"acc"} and len(h.metrics["acc"]) == 4
    for e, p in enumerate(per_epoch):
        assert h.val_loss[e] == pytest.approx(reference.mlp_value_and_grad(p, Xv, Yv)[0], rel=1e-12)
        assert h.val_metrics["acc"][e] == np.mean(reference.mlp_forward(p, Xv).argmax(1) == Yv.argmax(1))
        assert h.metrics["acc"][e] == np.mean(reference.mlp_forward(p, X[:40]).argmax(1) == Y[:40].argmax(1))
        assert h.metrics["norm"][e] == pytest.approx(np.abs(p["W1"]).sum())
    assert "val_loss" in repr(h) and "val_acc" in repr(h)


def drift():
    """x moves by -1 per epoch (constant gradient, SGD lr 1); the loss is mean((x - t)^2)."""
    def vg(x, t):
        return float(np.mean((x - t) ** 2)), {"x": np.array(1.0)}
    return vg


def test_early_stopping_restores_the_best_epoch():
    # validation t = -3: val loss after epochs 1, 2, ... is 4, 1, 0, 1, 4: best epoch 3, stop after 2 more
    h = train.fit(drift(), {"x": 0.0}, {"t": np.zeros(2)}, epochs=50, optimizer=train.SGD(1.0),
                  validation={"t": np.full(2, -3.0)}, early_stopping=2)
    assert h.val_loss == [4.0, 1.0, 0.0, 1.0, 4.0]
    assert h.epochs == 5 and h.best_epoch == 3 and h.stopped_early
    assert float(h.params["x"]) == -3.0
    # without validation it watches the training loss; a run that never stops still keeps the best
    h = train.fit(drift(), {"x": 0.0}, {"t": np.full(3, -2.0)}, epochs=6, optimizer=train.SGD(1.0), early_stopping=10)
    assert h.epochs == 6 and not h.stopped_early and h.best_epoch == 3 and float(h.params["x"]) == -3.0
    # (the loss of epoch e is measured before its step, at x = 1 - e: it is 0 in epoch 3, after which x = -3)


def test_non_finite_validation_loss_is_a_training_error():
    def vg(x, t):
        return (float("nan") if t[0] > 5 else 0.0), {"x": np.array(0.0)}

    with pytest.raises(train.TrainingError, match="validation loss is nan at epoch 1"):
        train.fit(vg, {"x": 0.0}, {"t": np.zeros(2)}, epochs=3, validation={"t": np.full(2, 9.0)})


# ---------------------------------------------------------------------------- schedules


def test_schedule_callable_sets_lr_each_epoch():
    opt = train.SGD(0.5)
    h = train.fit(bowl, {"p": np.zeros(2)}, dummy(), epochs=4, optimizer=opt, schedule=lambda e: 0.2 / e)
    p = np.zeros(2)
    for e in range(1, 5):
        p = p - (0.2 / e) * (A @ (p - C))
    np.testing.assert_allclose(h.params["p"], p, rtol=1e-14)
    assert h.lr == [0.2, 0.1, 0.2 / 3, 0.05] and opt.lr == 0.5     # restored afterwards
    assert train.fit(bowl, {"p": np.zeros(2)}, dummy(), epochs=2, optimizer=opt).lr == [0.5, 0.5]


def test_built_in_schedules_by_hand():
    s = schedules.step(0.8, every=2, gamma=0.5)
    assert [s(e) for e in range(1, 7)] == [0.8, 0.8, 0.4, 0.4, 0.2, 0.2]
    c = schedules.cosine(1.0, epochs=5, min_lr=0.1)
    for e in range(1, 8):
        assert c(e) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * min(e - 1, 5) / 5)) / 2, rel=1e-15)
    w = schedules.warmup(schedules.step(1.0, every=10), epochs=3)
    assert [w(e) for e in range(1, 6)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    h = train.fit(bowl, {"p": np.zeros(2)}, dummy(), epochs=3, optimizer=train.SGD(0.3), schedule="cosine")
    assert h.lr == pytest.approx([0.3, 0.3 * (1 + math.cos(math.pi / 3)) / 2, 0.3 * (1 + math.cos(2 * math.pi / 3)) / 2])
    with pytest.raises(InputError, match=r"schedule\(2\) returned -1"):
        train.fit(bowl, {"p": np.zeros(2)}, dummy(), epochs=3, schedule=lambda e: 0.1 if e == 1 else -1)
    with pytest.raises(InputError, match="schedule must be"):
        train.fit(bowl, {"p": np.zeros(2)}, dummy(), epochs=3, schedule="cosine_annealing")
    with pytest.raises(InputError, match="every must be a positive int"):
        schedules.step(0.1, every=0)


# ---------------------------------------------------------------------------- clipping and batch losses


def test_clip_by_global_norm_by_hand():
    def vg(a, b, t):
        return 0.0, {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}       # global norm 5

    h = train.fit(vg, {"a": np.zeros(2), "b": np.zeros((1, 1))}, dummy(), epochs=1, optimizer=train.SGD(1.0),
                  clip_norm=2.0, weight_decay=0.0)
    np.testing.assert_allclose(h.params["a"], [-1.2, 0.0], rtol=1e-15)
    np.testing.assert_allclose(h.params["b"], [[-1.6]], rtol=1e-15)
    # clipping comes first, weight decay after (as clip_grad_norm_ before a PyTorch step)
    h = train.fit(vg, {"a": np.ones(2), "b": np.ones((1, 1))}, dummy(), epochs=1, optimizer=train.SGD(1.0),
                  clip_norm=1.0, weight_decay=0.5)
    np.testing.assert_allclose(h.params["a"], [1 - 0.6 - 0.5, 1 - 0.5], rtol=0, atol=1e-15)
    g, norm = train.clip_by_global_norm({"a": np.array([0.3, 0.4])}, 1.0)
    assert norm == pytest.approx(0.5) and g["a"].tolist() == [0.3, 0.4]           # within the bound: unchanged
    with pytest.raises(InputError, match="clip_norm"):
        train.fit(vg, {"a": np.ones(2), "b": np.ones((1, 1))}, dummy(), epochs=1, clip_norm=0)
    # huge but finite gradients: the norm does not overflow, and clipping gives the true direction
    g, norm = train.clip_by_global_norm({"a": np.array([3e200, 0.0]), "b": np.array([[4e200]])}, 1.0)
    assert norm == pytest.approx(5e200, rel=1e-15)
    np.testing.assert_allclose(g["a"], [0.6, 0.0], rtol=1e-15)
    np.testing.assert_allclose(g["b"], [[0.8]], rtol=1e-15)

    def inf_grad(a, t):
        return 0.0, {"a": np.array([np.inf, 1.0])}

    with pytest.raises(train.TrainingError, match="the gradient norm is inf at epoch 1, batch 1"):
        train.fit(inf_grad, {"a": np.zeros(2)}, dummy(), epochs=1, clip_norm=1.0)


def test_record_batches():
    def vg(x, t):
        return float(np.mean(t)), {"x": np.array(0.0)}

    t = np.arange(10.0)
    h = train.fit(vg, {"x": 0.0}, {"t": t}, epochs=2, batch_size=4, shuffle=False, record_batches=True)
    assert h.batch_loss == [np.mean(t[:4]), np.mean(t[4:8]), np.mean(t[8:])] * 2
    assert h.loss[0] == pytest.approx(np.mean(t))
    assert train.fit(vg, {"x": 0.0}, {"t": t}, epochs=1).batch_loss == []


# ---------------------------------------------------------------------------- errors


def test_option_errors_name_the_culprit():
    good = {"t": np.zeros(3)}
    p = {"p": np.zeros(2)}
    with pytest.raises(InputError, match="weight_decay names 'q', which is not a parameter"):
        train.fit(bowl, p, good, epochs=1, weight_decay={"q": 0.1})
    with pytest.raises(InputError, match="weight_decay for 'p' must be a finite number >= 0"):
        train.fit(bowl, p, good, epochs=1, weight_decay=-0.1)
    with pytest.raises(InputError, match="validation must have the same arrays as data.*has no 't'"):
        train.fit(bowl, p, good, epochs=1, validation={"s": np.zeros(2)})
    with pytest.raises(InputError, match="early_stopping"):
        train.fit(bowl, p, good, epochs=1, early_stopping=0)
    with pytest.raises(InputError, match="metric 'm' must be a callable"):
        train.fit(bowl, p, good, epochs=1, metrics={"m": 3})
    with pytest.raises(InputError, match=r"params\['p'\] contains nan"):
        train.fit(bowl, {"p": np.array([np.nan, 0.0])}, good, epochs=1)
    with pytest.raises(InputError, match=r"params\['p'\] has dtype complex128"):
        train.fit(bowl, {"p": np.zeros(2, complex)}, good, epochs=1)
    with pytest.raises(InputError, match="init_params dtype"):
        nn.init_params(nn.mlp([2, 2]), dtype=np.int32)
    with pytest.raises(InputError, match="progress must be"):
        train.fit(bowl, p, good, epochs=1, progress="yes")
