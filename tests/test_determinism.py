"""Generated code, rewrite reports and tables are byte-identical across runs and PYTHONHASHSEED values."""

import hashlib
import os
import subprocess
import sys

SCRIPT = r'''
import sympy as sp, symgrad as sg
from symgrad.functions import relu, leaky_relu, sigmoid
x, y, w, b, z = sp.symbols("x y w b z")
s = 1/(1 + sp.exp(-(w*x + b)))
h = sp.tanh(w*x + b)
exprs = [
    -y*sp.log(s) - (1 - y)*sp.log(1 - s),                                  # rewrites, shared nodes
    -y*sp.log(sigmoid(w*x)) - (1 - y)*sp.log(1 - sigmoid(w*x)),
    sp.log(sp.exp(w*x) + sp.exp(b) + sp.exp(y*w)) + sp.exp(b*x) - 1,
    sp.Piecewise((sp.sqrt(w*x), w*x > 0), (sp.log(1 + w**2), y > 0), (w, True)),  # guards
    sp.Max(w*x, 0) + sp.Max(w/10, w) + sp.Min(w, b, 0) + sp.Abs(w - b) + relu(b) + leaky_relu(w, 0.2),
    (h*h + h)**2 + sp.sin(h)*sp.exp(h),
]
for e in exprs:
    wrt = sorted(e.free_symbols & {w, b}, key=lambda t: t.name)
    f = sg.compile(e, wrt=wrt)
    print(f.source)
    print([str(r) for r in f.rewrites])
    t = sg.table(e, wrt=wrt, at={x: 3, y: 1, w: sp.Rational(1, 2), b: -1})
    print(t); print(t.to_markdown()); print(t.to_latex()); print(t.to_json())
'''


def run(seed):
    env = dict(os.environ, PYTHONHASHSEED=str(seed))
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_code_reports_and_tables_are_identical_under_three_hash_seeds():
    outputs = [run(seed) for seed in (0, 1, 4242)]
    digests = {hashlib.sha256(o.encode()).hexdigest() for o in outputs}
    assert len(digests) == 1, "output depends on PYTHONHASHSEED"
    assert "np.logaddexp" in outputs[0] and "np.where" in outputs[0]  # the script exercised rewrites and guards


MATRIX_SCRIPT = r'''
import sympy as sp, symgrad as sg
for activation, loss in (("tanh", "softmax_cross_entropy"), ("sigmoid", "mse"), ("relu", "binary_cross_entropy")):
    net = sg.nn.mlp([4, 5, 3], activation=activation, loss=loss)
    f = sg.compile(net.loss, wrt=list(net.params), args=[net.inputs, net.targets])
    print(f.source)
    print([str(r) for r in f.rewrites])
    print(str(sg.decompose(net.loss)))
X, Y, W1, W2 = (sp.MatrixSymbol(name, 4, 4) for name in ("X", "Y", "W1", "W2"))
M = (X*W1).applyfunc(sp.tanh) + (X*W2).applyfunc(sp.tanh).T          # a transposed activation
L = sp.Trace(Y.T*M) + sp.Trace((M - Y).T*(M - Y))
f = sg.compile(L, wrt=[W1, W2], args=[X, Y])
print(f.source)
print(str(sg.decompose(L)))
'''


def run_script(script, seed):
    env = dict(os.environ, PYTHONHASHSEED=str(seed))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_matrix_network_source_and_graph_are_identical_under_hash_seeds():
    outputs = [run_script(MATRIX_SCRIPT, seed) for seed in (0, 1, 4242)]
    assert outputs[0] == outputs[1] == outputs[2], "network code or graph depends on PYTHONHASHSEED"
    assert "def value_and_grad(X, Y, W1, b1, W2, b2):" in outputs[0] and "ξ2 = X@W1" in outputs[0]
    assert "_lse_rows" in outputs[0]  # the softmax cross-entropy node was built
