"""The teacher's kit on the lecture's examples: pictures, chain-rule paths, a checked table, node code.

1. The logistic loss -y*log(1/(1+exp(-w*x))) at x = 3, y = 1, w = 3: its derivative graph
   (SVG), and the slides' own forward-mode table checked cell by cell (the slides drop the
   minus sign of ∂ξ4/∂ξ3; the checker reports that one cell and the three it carried into).
2. The p(h1, h2) graph of the "derivatives computation graph" slides: every path from p to
   x1 and how reverse mode groups them.
3. The per-weight chain of the 2-layer network: ∂L/∂w = 2(a − y) · a(1 − a) · a_h.
4. The triangle network (2-3-1, sigmoid) drawn at matrix level.
5. The sigmoid node's forward_pass and backward_pass.

    python examples/teacher_kit.py [OUTDIR]     # writes the pictures (SVG) to OUTDIR
"""

import pathlib
import sys
import tempfile

import numpy as np
import sympy as sp

import symgrad as sg
from symgrad import nn

HERE = pathlib.Path(__file__).resolve().parent


def main(outdir=None):
    outdir = pathlib.Path(outdir or tempfile.mkdtemp(prefix="symgrad-teacher-"))
    outdir.mkdir(parents=True, exist_ok=True)
    x, y, w = sp.symbols("x y w")
    loss = -y * sp.log(1 / (1 + sp.exp(-w * x)))
    point = {x: 3, y: 1, w: 3}
    pic = sg.graph(loss, wrt=w, at=point)
    (outdir / "logistic_backward.svg").write_text(pic.to_svg(), encoding="utf-8")
    (outdir / "logistic_forward.svg").write_text(pic.to_svg("forward"), encoding="utf-8")
    slide = (HERE / "data" / "lecture_slide_table.md").read_text(encoding="utf-8")
    report = sg.check_table(loss, slide, wrt=w, at=point)
    print("== the slides' table, checked ==")
    print(report)

    x1, x2 = sp.symbols("x1 x2")
    z1, z2 = sp.tanh(x1 * x2), sp.tanh(x1 + x2)
    p = sp.tanh(z1 * z2) * sp.tanh(z1 + z2)  # p(h1, h2) with h1 = h1(z1, z2), h2 = h2(z1, z2)
    at_p = {x1: sp.Rational(1, 2), x2: 1}
    (outdir / "p_h1_h2.svg").write_text(sg.graph(p, wrt=[x1, x2], at=at_p).to_svg(), encoding="utf-8")
    paths = sg.explain(p, wrt=x1, at=at_p)
    print("\n== p(h1, h2): the paths from p to x1 ==")
    print(paths)

    wh, bh, b = sp.symbols("w_h b_h b")
    a_h = sg.sigmoid(wh * x + bh)
    a = sg.sigmoid(w * a_h + b)
    two_layer = (y - a) ** 2
    at_2 = {x: 1, y: 1, wh: sp.Rational(1, 2), bh: 0, w: -1, b: sp.Rational(1, 4)}
    chain = sg.explain(two_layer, wrt=w, at=at_2)
    print("\n== the 2-layer network: dL/dw = 2(a - y) · a(1 - a) · a_h ==")
    print(chain)

    net = nn.mlp([2, 3, 1], activation="sigmoid", loss="binary_cross_entropy")
    params = nn.init_params(net, seed=0)
    X = np.array([[-0.1, -0.1], [0.9, 0.9]])
    at_net = {"X": X, "Y": np.array([[1.0], [0.0]]), **params}
    (outdir / "triangle_network.svg").write_text(sg.graph(net.loss, wrt=list(params), at=at_net).to_svg(),
                                                  encoding="utf-8")
    print("\n== the sigmoid node ==")
    print(sg.node_code("sigmoid"))
    print("\npictures written to", outdir)
    return report, paths, chain, outdir


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
