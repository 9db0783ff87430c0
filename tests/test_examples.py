"""Every scalar example in examples/ runs and prints the numbers it promises."""

import importlib.util
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / (name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_lecture_logistic_table(capsys):
    t, grad = load("lecture_logistic_table").main()
    assert grad == pytest.approx(-3.70183727959e-4, rel=1e-11)
    assert "dL/dw = -0.000370183727959" in capsys.readouterr().out


def test_one_neuron_step(capsys):
    value, grads, step, after = load("one_neuron_step").main()
    assert after < value  # one gradient step at lr 0.5 lowers the loss
    assert step["b"] == pytest.approx(0.1 + 0.5 * (1 - 1 / (1 + 2.718281828459045 ** -0.32)), rel=1e-12)


def test_chain_rule_h(capsys):
    t, f = load("chain_rule_h").main()
    assert "h'(2) = 24.0" in capsys.readouterr().out


def test_teacher_kit(capsys, tmp_path):
    report, paths, chain, outdir = load("teacher_kit").main(tmp_path)
    assert (report.wrong, report.follows) == (1, 3)
    assert paths.count == 4
    assert sorted(p.name for p in outdir.iterdir()) == ["logistic_backward.svg", "logistic_forward.svg",
                                                        "p_h1_h2.svg", "triangle_network.svg"]
    assert "def backward_pass(inputs, incoming_gradient):" in capsys.readouterr().out
