r"""One place for names and user text in generated code.

A SymPy symbol's name is user text (a data column, a parsed file) and may hold anything: a
newline, quotes, backslashes, NUL, a Python keyword. Generated source meets user text in
three places only, and each goes through one function here:

* an **identifier** (a parameter, its ``_dot``/``_bar`` variables): ``identifier_names``
  gives a valid, unique ASCII Python identifier that cannot shadow what the generated code
  itself uses (``np``, ``scipy``, helpers such as ``_sum_to``, builtins such as ``float``);
* a **comment** after ``#``: ``comment`` gives one line (every line break escaped), so no
  name can end the comment and start a statement;
* a **docstring** (the provenance header): ``docstring`` gives text that cannot close the
  triple-quoted string or form an invalid escape, and reads back as the original text.

>>> import sympy as sp
>>> evil = sp.Symbol("a\n    __import__('os').system('echo pwned')\n    #")
>>> identifier_names([evil])[evil]
'a___import___os_system_echo_pwned_'
>>> print("x = 1  # " + comment(evil.name))
x = 1  # a\n    __import__('os').system('echo pwned')\n    #
>>> print(docstring('say "hi" \\N'))
say \"hi\" \\N
"""

from __future__ import annotations

import keyword
import re
import unicodedata

__all__ = ["identifier_names", "comment", "docstring"]

# Names the generated modules define or read: NumPy/SciPy, the module's helpers, the
# functions, and the builtins a generated body may call. A user name never becomes one of
# these, and never starts with "_" (the prefix every helper and internal local uses).
_BUILTINS = frozenset("""
    abs aiter all anext any ascii bin bool breakpoint bytearray bytes callable chr classmethod
    compile complex copyright credits delattr dict dir divmod enumerate eval exec exit filter
    float format frozenset getattr globals hasattr hash help hex id input int isinstance
    issubclass iter len license list locals map max memoryview min next object oct open ord pow
    print property quit range repr reversed round set setattr slice sorted staticmethod str sum
    super tuple type vars zip
""".split())
_RESERVED = frozenset({"np", "numpy", "scipy", "math", "_sum_to", "_batch", "_lse_rows", "_softmax_rows",
                       "value", "value_and_grad", "grad", "jvp",
                       "xp", "xsp"}) | _BUILTINS  # xp, xsp: the array-API module's namespaces (flavours.py)
_XI_NAME = re.compile(r"xi\d+(_dot|_bar)?")
_GREEK = re.compile(r"GREEK (SMALL|CAPITAL) LETTER (?:FINAL )?(\w+)$")


def _ascii(name: str) -> str:
    """``name`` spelled in ASCII letters, digits and underscores: accents dropped, Greek
    letters by name (α -> alpha, Ω -> Omega), each run of other characters one underscore."""
    out = []
    for ch in unicodedata.normalize("NFKD", name):
        if ch.isascii() and (ch.isalnum() or ch == "_"):
            out.append(ch)
        elif unicodedata.category(ch) == "Mn":  # a combining accent: é is e + ´
            continue
        else:
            m = _GREEK.match(unicodedata.name(ch, "")) if not ch.isascii() else None
            if m:
                letter = m.group(2).lower()
                out.append(letter.capitalize() if m.group(1) == "CAPITAL" else letter)
            elif not out or out[-1] is not None:
                out.append(None)  # a gap: one underscore however many characters it stands for
    return "".join("_" if piece is None else piece for piece in out)


def identifier_names(leaves) -> dict:
    r"""A valid, unique ASCII Python identifier for each leaf symbol, as close to its name as possible.

    The ``_dot`` and ``_bar`` variants of each name are taken too (tangents and adjoints).

    >>> import sympy as sp
    >>> identifier_names(sp.symbols("x lambda np x_1'"))
    {x: 'x', lambda: 'lambda_', np: 'np_', x_1': 'x_1_'}
    >>> list(identifier_names(sp.symbols("α ξ_2 Ω float _sum_to xi3 3d")).values())
    ['alpha', 'xi_2', 'Omega', 'float_', 's_sum_to', 'xi3_', 's_3d']
    >>> list(identifier_names([sp.Symbol('a"'), sp.Symbol("a\\"), sp.Symbol("a\n")]).values())
    ['a_', 'a__1', 'a__2']
    """
    used = set(_RESERVED)
    out = {}
    for s in leaves:
        base = _ascii(s.name) or "s"
        if base[0].isdigit():
            base = "s_" + base
        elif base[0] == "_":  # "_..." is the generated code's own namespace
            base = "s" + base
        if keyword.iskeyword(base) or base in _RESERVED or _XI_NAME.fullmatch(base):
            base += "_"
        name, k = base, 1
        while name in used or name + "_dot" in used or name + "_bar" in used:
            name, k = "%s_%d" % (base, k), k + 1
        used.update((name, name + "_dot", name + "_bar"))
        out[s] = name
    assert all(n.isidentifier() and n.isascii() and not keyword.iskeyword(n) for n in out.values())
    return out


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _unsafe(ch: str) -> bool:
    r"""A character that can end a line (for Python or ``str.splitlines``: \n \r \v \f \x1c-\x1e
    \x85 \u2028 \u2029), another control character, NUL, an invisible format character
    (bidirectional overrides included) or a lone surrogate (which ``compile`` rejects)."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    return "\\x%02x" % code if code < 0x100 else "\\u%04x" % code if code < 0x10000 else "\\U%08x" % code


def comment(text, limit: int = 300) -> str:
    r"""``text`` as one line that is safe after ``#``: every line break and control character
    is written as a backslash escape, and text longer than ``limit`` characters is cut
    (ending in `` ...``). Other characters, ξ and ∂ included, are kept.

    >>> comment("∂ξ3/∂x")
    '∂ξ3/∂x'
    >>> print(comment("a\nb\rc\u2028d\x00e\x1cf\x85g"))
    a\nb\rc\u2028d\x00e\x1cf\x85g
    >>> comment("x" * 50, limit=10)
    'xxxxxx ...'
    >>> short = comment("\n" * 50, limit=10)
    >>> short, len(short.splitlines())
    ('\\n\\n\\n ...', 1)
    """
    pieces, size = [], 0
    for ch in str(text):
        pieces.append(_escape(ch) if _unsafe(ch) else ch)
        size += len(pieces[-1])
        if size > limit:
            break
    else:
        return "".join(pieces)
    kept, size = [], 0  # too long: whole pieces (never half an escape) up to the marker
    for piece in pieces:
        if size + len(piece) > limit - 4:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + " ..."


def docstring(text, limit: int | None = None) -> str:
    r"""``text`` written to stand inside a triple-quoted (docstring) literal: backslashes and
    double quotes are escaped, and so is every line break and control character, so nothing
    can close the string, form a bad escape such as ``\N``, or start a new line. The
    literal's value is ``text`` again. ``limit`` cuts long text first (ending in `` ...``).

    >>> import ast
    >>> hostile = 'a' + '"' * 3 + 'b\\N{c}\nd\x00"'
    >>> source = '"' * 3 + docstring(hostile) + '"' * 3
    >>> print(docstring(hostile))
    a\"\"\"b\\N{c}\nd\x00\"
    >>> len(source.splitlines()), ast.literal_eval(source) == hostile
    (1, True)
    >>> docstring("-y*log(1/(1 + exp(-w*x)))")
    '-y*log(1/(1 + exp(-w*x)))'
    """
    text = str(text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + " ..."
    out = []
    for ch in text:
        if ch == "\\" or ch == '"':
            out.append("\\" + ch)
        elif _unsafe(ch):
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)
