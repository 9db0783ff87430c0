"""symgrad: a symbolic-to-numeric derivative compiler.

SymPy expression -> ξ graph -> forward/reverse programs -> NumPy code and derivative tables.

>>> import sympy as sp, symgrad as sg
>>> x, w = sp.symbols("x w")
>>> print(sg.decompose(sp.exp(-w*x)))
ξ1 = -w*x
ξ2 = exp(ξ1)
"""

from .errors import InputError, ParseError, SymgradError, UnsupportedError
from .functions import expm1, leaky_relu, log1p, logsumexp, relu, sigmoid, softplus
from .rewrite import stabilize
from .rules import kink
from .ir import Graph, Node
from .frontend import decompose
from .compiled import CompiledFunction, compile
from .export import export
from .tables import Table, table
from .check import GradientMismatch, check_grads
from .picture import Picture, graph
from .explain import explain
from .check_table import check_table
from .node_code import node_code
from .parse import parse_expr, parse_symbols, parse_values
from . import nn, train  # network builders and the training loop: symgrad.nn.mlp, symgrad.train.fit

__version__ = "0.1.0"

__all__ = [
    "SymgradError", "InputError", "ParseError", "UnsupportedError",
    "sigmoid", "relu", "leaky_relu", "softplus", "log1p", "expm1", "logsumexp",
    "stabilize", "kink",
    "Graph", "Node", "decompose",
    "CompiledFunction", "compile", "export",
    "Table", "table", "GradientMismatch", "check_grads",
    "Picture", "graph", "explain", "check_table", "node_code",
    "parse_expr", "parse_symbols", "parse_values",
    "nn", "train",
]
