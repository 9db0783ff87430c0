"""The fixed runtime of an exported module (symgrad.export): source text, not code symgrad runs.

Each constant is a piece of the standalone module ``f.export()`` writes: argument binding and
the checks with CompiledFunction's semantics and messages (``COMMON``), the NumPy flavour's
public functions (``NUMPY_API``, ``HVP`` / ``NO_HVP``), the array-API flavour's
(``XP_API``: namespaces, dtype and device as symgrad.portable binds them) and ``selfcheck``
(``SELFCHECK``). The exported module imports nothing of symgrad, so these repeat, as text,
what compiled.py, inputs.py and portable.py do.

>>> "def selfcheck():" in SELFCHECK
True
"""

__all__ = ["COMMON", "NUMPY_API", "HVP", "NO_HVP", "XP_API", "SELFCHECK"]

COMMON = r'''

# ---- binding and checks: the semantics of symgrad.compiled.CompiledFunction ----

class InputError(ValueError):
    """A value, name or shape passed to this module is missing or wrong (symgrad's InputError)."""


def _shape_of(v):
    """The shape of a bound value as a tuple of ints (a PyTorch shape is a torch.Size)."""
    return tuple(getattr(v, "shape", ()))


def _shown(v):
    text = repr(v)
    return text if len(text) < 60 else "a %s" % type(v).__name__


def _int_text(v):
    """A huge number shortened: 10**400 prints as an integer of 401 digits."""
    if isinstance(v, int) and not isinstance(v, bool):
        digits = len(str(abs(v)))
        if digits > 20:
            return "an integer of %d digits (about %s1e%d)" % (digits, "-" if v < 0 else "", digits - 1)
    text = str(v)
    return text if len(text) <= 40 else text[:20] + "..." + text[-10:]


def _real_number(name, v, where=""):
    """``v`` as a float, for a value NumPy cannot read as a number itself (a Fraction, a Decimal,
    an int beyond int64, anything real with __float__); InputError for anything else."""
    what = "value of %r%s" % (name, where)
    if isinstance(v, (str, bytes, np.ndarray)) or v is None:
        raise InputError("%s is %s (%s), not a number or numeric array" % (what, _shown(v), type(v).__name__))
    if isinstance(v, numbers.Complex) and not isinstance(v, numbers.Real):
        raise InputError("%s is %s, a complex number; this module computes with real float64 values: pass the "
                         "real part (v.real) if the imaginary part is 0" % (what, _shown(v)))
    try:
        f = float(v)
    except OverflowError:
        raise InputError("%s: %s does not fit in a float64 (largest about 1.8e308); rescale the input"
                         % (what, _int_text(v))) from None
    except (TypeError, ValueError, ArithmeticError):
        raise InputError("%s is %s (%s), not a number or numeric array" % (what, _shown(v), type(v).__name__)) from None
    if math.isinf(f):
        try:
            infinite = v == math.inf or v == -math.inf
        except Exception:  # noqa: BLE001 - a comparison the value does not support: treat as given inf
            infinite = True
        if not infinite:
            raise InputError("%s: %s does not fit in a float64 (largest about 1.8e308); rescale the input"
                             % (what, _int_text(v)))
    return f


def _float_array(name, v, a=None):
    """``v`` as a float64 array when np.asarray gave no real numeric array (``a``)."""
    if a is None:
        try:
            a = np.asarray(v, dtype=object)
        except Exception:  # noqa: BLE001 - anything NumPy cannot read is the user's value
            a = None
        if a is None or (a.dtype.kind == "O" and any(isinstance(e, (list, tuple, np.ndarray)) for e in a.flat)):
            raise InputError("value of %r is %s (%s), not a number or numeric array (a ragged list?); pass a "
                             "number or an array of numbers of one shape" % (name, _shown(v), type(v).__name__))
    kind = a.dtype.kind
    if a.ndim == 0 and kind in "cO":
        return np.array(_real_number(name, a[()] if isinstance(v, (list, tuple, np.ndarray)) else v))
    if kind == "c":
        raise InputError("value of %r is a complex array; this module computes with real float64 values: pass its "
                         "real part (np.real) if the imaginary parts are 0" % name)
    if kind != "O":
        raise InputError("value of %r is %s (%s, dtype %s), not a number or numeric array" % (
            name, _shown(v), type(v).__name__, a.dtype))
    out = np.empty(a.shape)
    for idx, e in np.ndenumerate(a):
        out[idx] = _real_number(name, e, " at index %s" % (idx,))
    return out


def _convert(name, v):
    """A value as NumPy reads it: float64 for numbers and integer arrays, float arrays kept;
    InputError naming ``name`` for a NaN or inf (when checked) and for what is not a number."""
    if type(v) is np.ndarray and v.dtype.kind == "f" and (v.ndim == 2 or not _SHAPES):
        if _CHECK_FINITE and v.size and not math.isfinite(v.sum()) and not np.isfinite(v).all():
            raise InputError("value of %r contains nan or inf; symgrad needs finite inputs" % name)
        return v if v.ndim else v[()]
    if isinstance(v, (float, int)) and not isinstance(v, bool):
        try:
            f = np.float64(v)  # NumPy semantics: 1/0 is inf and (-1)**(1/3) nan, never Python errors
        except OverflowError:  # an int beyond float range (10**400)
            f = np.float64(_real_number(name, v))
        if _CHECK_FINITE and not math.isfinite(f):
            raise InputError("value of %r is %r; symgrad needs finite numbers" % (name, v))
        return f
    try:
        a = np.asarray(v)
    except Exception:  # noqa: BLE001 - anything NumPy cannot read is the user's value
        a = None
    if a is None or a.dtype.kind not in "biuf":
        a = _float_array(name, v, a)
    elif a.dtype.kind != "f":
        a = a.astype(np.float64)
    if _CHECK_FINITE and not math.isfinite(a.sum()) and not np.isfinite(a).all():
        raise InputError("value of %r contains nan or inf; symgrad needs finite inputs" % name)
    return a if a.ndim else a[()]


def _gather(args, values):
    """The values in NAMES order, as given (InputError for a missing, unknown or repeated one)."""
    if len(args) > len(NAMES):
        raise InputError("got %d positional values but this function takes %d (%s)"
                         % (len(args), len(NAMES), ", ".join(NAMES)))
    bound = list(args) + [None] * (len(NAMES) - len(args))
    given = [True] * len(args) + [False] * (len(NAMES) - len(args))
    slots = {n: i for i, n in enumerate(NAMES)}
    for k, v in values.items():
        i = slots.get(k)
        if i is None:
            close = difflib.get_close_matches(k, NAMES, 1)
            hint = " (did you mean %r?)" % close[0] if close else ""
            raise InputError("unexpected value %r%s; this function takes %s" % (k, hint, ", ".join(NAMES)))
        if given[i]:
            raise InputError("value for %r given twice" % k)
        bound[i], given[i] = v, True
    missing = [n for n, g in zip(NAMES, given) if not g]
    if missing:
        raise InputError("missing value for %s; pass %s" % (
            ", ".join(repr(m) for m in missing), ", ".join("%s=..." % m for m in missing)))
    return bound


def _check_bound(bound):
    """The shape checks of bound values: matrix shapes and scalar symbols, or broadcasting."""
    if _MATRIX:
        if _SHAPES:
            _check_shapes(bound)
        for i in _SCALAR_SLOTS:
            if _shape_of(bound[i]):
                raise InputError("%s is a scalar symbol of this matrix expression, so it takes a number, but its "
                                 "value has shape %s; pass a number, or declare it as a MatrixSymbol of that shape"
                                 % (NAMES[i], _shape_of(bound[i])))
    elif _BCAST_SLOTS:
        shape = None
        for i in _BCAST_SLOTS:
            s = _shape_of(bound[i])
            if s and s != shape:
                if shape is not None:
                    _check_broadcast(bound)
                    break
                shape = s


def _broadcast_message(items):
    """The text for values whose shapes do not broadcast together; ``items``: (name, shape, is_parameter)."""
    acc, seen, culprit = (), [], None
    for n, s, param in items:
        try:
            acc = np.broadcast_shapes(acc, s)
        except ValueError:
            culprit = (n, s, param)
            break
        seen.append((n, s))
    if culprit is None:
        return "the shapes of %s do not broadcast together" % ", ".join("%s %s" % (n, s) for n, s, _ in items)
    n, s, param = culprit
    rule = "NumPy broadcasting: axes, compared from the right, must be equal or 1"
    if param:
        batch = ", ".join("%s: %s" % (m, t) for m, t in seen if t)
        return ("the parameter %s has shape %s, which does not broadcast against the batch shape %s (%s) (%s); pass %s "
                "as a number, or as an array whose shape broadcasts against %s" % (n, s, acc, batch, rule, n, acc))
    partner = None
    for m, t in seen:
        try:
            np.broadcast_shapes(t, s)
        except ValueError:
            partner = (m, t)
            break
    if partner is not None:
        m, t = partner
        return ("%s has shape %s and %s has shape %s, which do not broadcast together (%s); pass arrays of one batch "
                "shape, or reshape one of them (a trailing axis of size 1 makes a grid)" % (m, t, n, s, rule))
    return ("%s has shape %s, which does not broadcast against the shape %s of %s (%s); pass arrays of one batch "
            "shape" % (n, s, acc, ", ".join("%s %s" % (m, t) for m, t in seen if t), rule))


def _check_broadcast(bound):
    shapes = [_shape_of(bound[i]) for i in _BCAST_SLOTS]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise InputError(_broadcast_message([(NAMES[i], s, i >= len(ARGS))
                                             for i, s in zip(_BCAST_SLOTS, shapes)])) from None


def _size(d, sizes):
    """A dimension's size: an int, a dimension name, or a compound size's tree; None if unknown."""
    if d is None or type(d) is int:
        return d
    if type(d) is str:
        return sizes.get(d)
    op, parts = d[0], d[1:]
    if op == "n":
        return sizes.get(parts[0])
    if op == "/":
        return parts[0] / parts[1]
    if op == "**":
        base = _size(parts[0], sizes)
        return None if base is None else base ** parts[1]
    vals = [_size(p, sizes) for p in parts]
    if any(v is None for v in vals):
        return None
    return sum(vals) if op == "+" else math.prod(vals)


def _sizes(bound):
    """Bind the symbolic dimensions from the arrays and check every matrix's shape, naming the
    culprit (symgrad.matrix.check_shapes); {dimension name: size}."""
    dims = {}
    for i, axes, text in _SHAPES:
        s = _shape_of(bound[i])
        if len(s) != 2:
            got = "a scalar" if not s else "an array of shape %s" % (s,)
            raise InputError("%s must be a 2-D array of shape %s, got %s" % (NAMES[i], text, got))
        for d, n in zip(axes, s):
            if type(d) is int:
                ok = d == n
            elif type(d) is str:
                ok = dims.setdefault(d, (n, NAMES[i]))[0] == n
            else:
                continue
            if not ok:
                known = ", ".join("%s = %d from %s" % (k, m, src) for k, (m, src) in dims.items())
                raise InputError("%s has shape %s but the expression needs %s%s" % (
                    NAMES[i], s, text, " with " + known if known else ""))
    sizes = {k: m for k, (m, _) in dims.items()}
    for i, axes, text in _SHAPES:  # compound sizes such as 2*n, once every dimension is bound
        s = _shape_of(bound[i])
        for d, n in zip(axes, s):
            if type(d) is int or type(d) is str:
                continue
            want = _size(d, sizes)
            if want is not None and float(want).is_integer() and int(want) != n:
                known = ", ".join("%s = %d from %s" % (k, m, src) for k, (m, src) in dims.items())
                raise InputError("%s has shape %s but the expression needs %s with %s" % (
                    NAMES[i], s, text, known))
    return sizes


def _check_shapes(bound):
    """Matrix arguments: 2-D, fixed sizes as declared, symbolic sizes consistent."""
    sizes = {}
    for i, (e0, e1), _ in _SHAPES:
        shape = _shape_of(bound[i])
        if len(shape) != 2:
            _sizes(bound)
        n0, n1 = shape
        if (sizes.setdefault(e0, n0) if type(e0) is str else e0 if type(e0) is int else n0) != n0 or \
                (sizes.setdefault(e1, n1) if type(e1) is str else e1 if type(e1) is int else n1) != n1:
            _sizes(bound)
    if _COMPOUND:
        _sizes(bound)
    for d in _DIVISOR_DIMS:
        if not sizes.get(d, 1):
            culprit = next(("%s has shape %s" % (NAMES[i], _shape_of(bound[i])) for i, axes, _ in _SHAPES
                            if d in axes), "")
            raise InputError("the dimension %s is 0 (%s), and this expression divides by %s (a mean over the "
                             "batch, say), which has no value over nothing; pass at least one row, or write the "
                             "loss as a sum" % (d, culprit, d))


def _count(bound):
    """How many values reduce="mean" averages over in this call."""
    if _OUT_SIZE is not None:
        sizes = _sizes(bound) if any(type(d) is not int for d in _OUT_SIZE) else {}
        return int(math.prod(int(_size(d, sizes)) for d in _OUT_SIZE))
    if _MATRIX:
        return 1
    return int(math.prod(np.broadcast_shapes(*(_shape_of(bound[i]) for i in _LEAF_SLOTS))))


def _empty_batch(bound):
    empty = ", ".join("%s has shape %s" % (n, _shape_of(v)) for n, v in zip(NAMES, bound)
                      if 0 in _shape_of(v)) or "the output has no entries"
    return InputError("reduce='mean' averages over the batch, but the batch is empty (%s): a mean over no "
                      "samples is undefined; pass at least one sample, or compile with reduce='sum' (a sum over "
                      "an empty batch is 0 and its gradient zeros)" % empty)


def _check_tangents(tangents):
    if not isinstance(tangents, dict):
        raise InputError("tangents must be a dict {parameter name: tangent}, got %s" % type(tangents).__name__)
    for k in tangents:
        if k not in WRT:
            raise InputError("tangent given for %r, which is not a parameter; parameters: %s" % (k, ", ".join(WRT)))


def _check_tangent(k, ds, ls):
    """A tangent of shape ``ds`` for the parameter ``k`` of shape ``ls``: equal, or (scalar
    expressions) broadcasting into it; else InputError."""
    if ds != ls and (_MATRIX or len(ds) > len(ls) or any(
            a != 1 and a != b for a, b in zip(reversed(ds), reversed(ls)))):
        raise InputError("the tangent of %r has shape %s but %r has shape %s; pass a tangent shaped like "
                         "its parameter%s" % (k, ds, k, ls, "" if _MATRIX else
                                               " (a number is the same direction in every entry)"))
'''

NUMPY_API = r'''

# ---- the public functions (NumPy): reduction and results as symgrad.compiled gives them ----

def _plain(v):
    """A 0-d result as a Python float, arrays unchanged."""
    return float(v) if np.ndim(v) == 0 else v


def _bind(args, values):
    """The values in NAMES order, converted and checked (shapes, broadcasting, finiteness)."""
    if not args and len(values) == len(NAMES) and all(n in values for n in NAMES):
        bound = [_convert(n, values[n]) for n in NAMES]
    else:
        bound = [_convert(n, v) for n, v in zip(NAMES, _gather(args, values))]
    _check_bound(bound)
    return bound


def _reduced(v, grads, bound):
    n = np.size(v)
    total = np.sum(v) if n != 1 or np.ndim(v) else v
    if REDUCE == "mean" and n == 0:
        raise _empty_batch(bound)
    if REDUCE == "mean" and n > 1:
        total = total / n
        grads = [g / n for g in grads]
    return _plain(total), dict(zip(WRT, grads))


def value(*args, **values):
    """The value, elementwise over a batch (a matrix-valued output: the matrix)."""
    bound = _bind(args, values)
    with np.errstate(all="ignore"):
        v = _value(*bound)
    if _OUT_SIZE is not None:
        return v
    return _plain(v)


def value_and_grad(*args, **values):
    """(value, {name: gradient}) from one reverse sweep; the value reduced like the gradients
    (sum or mean; with reduce=None the value and the gradients per sample)."""
    if "value_and_grad" in _REFUSED:
        raise InputError(_REFUSED["value_and_grad"])
    if REDUCE is None:
        return value(*args, **values), grad(*args, **values)
    bound = _bind(args, values)
    with np.errstate(all="ignore"):
        v, grads = _value_and_grad(*bound)
    if _MATRIX and _OUT_SIZE is None:  # a network's loss: one number, gradients shaped already
        return float(v), dict(zip(WRT, grads))
    return _reduced(v, grads, bound)


def grad(*args, **values):
    """{name: gradient of the (summed or averaged) value}, each shaped like its parameter; with
    reduce=None each sample's gradient, batch axes in front."""
    if "grad" in _REFUSED:
        raise InputError(_REFUSED["grad"])
    bound = _bind(args, values)
    if REDUCE is None:
        with np.errstate(all="ignore"):
            grads = _grad_per_sample(*bound)
        return {k: _plain(g) for k, g in zip(WRT, grads)}
    with np.errstate(all="ignore"):
        grads = _grad(*bound)
    if REDUCE == "mean":
        n = _count(bound)
        if n == 0:
            raise _empty_batch(bound)
        if n > 1:
            grads = [g / n for g in grads]
    return dict(zip(WRT, grads))


def jvp(tangents, /, *args, **values):
    """(value, J·v): the directional derivative along ``tangents`` ({parameter name: tangent}, a
    missing one is zero) by forward mode, per sample; for a matrix expression the tangent of its value."""
    _check_tangents(tangents)
    bound = _bind(args, values)
    dots = []
    for k in WRT:
        like = bound[NAMES.index(k, len(ARGS))]
        if k not in tangents:
            dots.append(np.zeros(np.shape(like)) if _MATRIX else np.float64(0.0))
            continue
        d = _convert(k + " tangent", tangents[k])
        _check_tangent(k, np.shape(d), np.shape(like))
        dots.append(d)
    with np.errstate(all="ignore"):
        v, dot = _jvp(*bound, *dots)
    if _MATRIX:
        if _OUT_SIZE is not None:  # a matrix-valued output: its tangent shaped like it, an array of its own
            if not (type(dot) is np.ndarray and dot.shape == np.shape(v) and dot.flags.writeable
                    and dot.dtype.kind == "f" and not any(np.may_share_memory(dot, a) for a in bound + dots)):
                dot = np.array(np.broadcast_to(dot, np.shape(v)), dtype=np.result_type(dot, float))
            return v, dot
        return _plain(v), _plain(dot)
    return _plain(v), _plain(np.broadcast_to(dot, np.shape(v)) if np.ndim(dot) < np.ndim(v) else dot)
'''

HVP = r'''

def hvp(v, /, *args, **values):
    """{name: H·v}: the Hessian of the reduced value times ``v`` ({parameter name: array shaped
    like it}; a missing one is zero), each shaped like its parameter; one forward-over-reverse sweep."""
    _check_tangents(v)
    bound = _bind(args, values)
    dots = []
    for k in WRT:
        shape = np.shape(bound[NAMES.index(k, len(ARGS))])
        if k not in v:
            dots.append(np.zeros(shape) if shape else 0.0)
            continue
        d = _convert(k + " direction", v[k])
        if np.shape(d) != shape:
            raise InputError("the direction for %r has shape %s but %r has shape %s; pass v shaped like "
                             "its parameter" % (k, np.shape(d), k, shape))
        dots.append(d)
    if "hvp" in _REFUSED:
        raise InputError(_REFUSED["hvp"])
    n = _count(bound)
    if n == 0 and REDUCE == "mean":
        raise InputError("the batch is empty, so its mean has no second derivative; pass at least one sample")
    with np.errstate(all="ignore"):
        out = _hvp(*bound, *dots)
    if REDUCE == "mean" and n > 1:
        out = [o / n for o in out]
    return {k: _plain(o) for k, o in zip(WRT, out)}
'''

NO_HVP = r'''

def hvp(v, /, *args, **values):
    """Second derivatives are of the reduced value: not available with reduce=None."""
    raise InputError("second derivatives are of the reduced value; compile with reduce='sum' or 'mean' "
                     "(per-sample Hessians: not available)")
'''

XP_API = r'''

# ---- the caller's array library: the semantics of symgrad.portable ----

class UnsupportedError(ValueError):
    """The caller's array library lacks a function this expression needs (symgrad's UnsupportedError)."""


_SPACES = {}  # (namespace, dtype, device) -> the globals the programs run with for them


def _library_of(v):
    """The array library of ``v`` ("torch", "jax", ...; "numpy" for a NumPy array), None for a
    number, a list or anything else (symgrad.portable.library_of)."""
    if isinstance(v, np.ndarray):
        return "numpy"
    t = type(v)
    root = t.__module__.partition(".")[0]
    if root in _LIBRARIES:
        return "jax" if root == "jaxlib" else root
    if hasattr(t, "__array_namespace__") and not isinstance(v, np.generic):
        return root
    return None


def _namespace(arrays, names):
    """(array-API namespace, library name) of ``arrays`` (one library; NumPy's for none)."""
    libs = sorted({_library_of(a) for a in arrays})
    if len(libs) > 1:
        raise InputError("the values mix arrays of %s (%s); pass arrays of one library" % (
            " and ".join(libs), ", ".join("%s: %s" % (n, _library_of(a)) for n, a in zip(names, arrays))))
    lib = libs[0] if libs else "numpy"
    probe = list(arrays) or [np.empty(0)]
    if array_api_compat is not None:
        try:
            return array_api_compat.array_namespace(*probe), lib
        except TypeError:
            pass
    ns = getattr(probe[0], "__array_namespace__", None)
    if ns is not None:
        return ns(), lib
    if lib == "numpy":
        raise InputError("NumPy %s has no array-API namespace (NumPy 2 has one): pip install array-api-compat, "
                         "or use this function's NumPy export (flavour='numpy')" % np.__version__)
    raise InputError("%s is a %s array; this module runs %s arrays through array-api-compat: pip install "
                     "array-api-compat" % (names[0], lib, lib))


def _device(a):
    if array_api_compat is not None:
        try:
            return array_api_compat.device(a)
        except (TypeError, AttributeError):
            pass
    return getattr(a, "device", None)


def _traced(a):
    """A JAX value being traced (jax.jit), or a lazy Dask array: no value to check yet."""
    return "Tracer" in type(a).__name__ or _library_of(a) == "dask"


def _const_maker(xp, dtype, device):
    def const(v):
        try:
            return xp.asarray(v, dtype=dtype, device=device)
        except TypeError:
            return xp.asarray(v, dtype=dtype)
    return const


def _default_float(xp):
    """The float dtype a library gives Python floats (float32 for PyTorch and JAX without x64)."""
    try:
        return xp.asarray(0.0).dtype
    except Exception:  # noqa: BLE001 - a library without asarray of a number
        return xp.float64


def _special(lib):
    """The special-function module of ``lib`` with every name the programs call on xsp, or UnsupportedError."""
    if not _SPECIAL:
        return None
    modname = _SPECIAL_MODULES.get(lib)
    mod = None
    if modname is not None:
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            mod = None
    missing = [n for n in _SPECIAL if mod is None or not hasattr(mod, n)]
    if missing:
        raise UnsupportedError("%s has no %s (scipy.special's %s)%s; pass NumPy arrays for this expression, or "
                               "rewrite it with elementary functions" % (
                                   lib, ", ".join(missing), ", ".join(missing),
                                   "" if modname is None else " in %s" % modname))
    return mod


def _space(xp, lib, dtype, device):
    """The globals the generated programs run with for one (namespace, dtype, device): copies of
    _GENERATED whose xp, xsp, _const and _library are that library's (made once, then reused)."""
    key = (id(xp), str(dtype), str(device))
    space = _SPACES.get(key)
    if space is None:
        space = dict(globals())
        space.update(xp=xp, xsp=_special(lib), _const=_const_maker(xp, dtype, device), _library=lib)
        for name in _GENERATED:
            f = space[name]
            space[name] = types.FunctionType(f.__code__, space, f.__name__, f.__defaults__, f.__closure__)
        _SPACES[key] = space
    return space


def _bind(args, values, tangents=None):
    """(namespace, library, dtype, device, bound values, {name: tangent}) of one call: the values
    (and tangents) as arrays of the call's library, dtype and device, checked (symgrad.portable)."""
    raw = _gather(args, values)
    named = list(zip(NAMES, raw)) + ([] if tangents is None else [(k + " tangent", v) for k, v in tangents.items()])
    found = [(n, v, _library_of(v)) for n, v in named]
    arrays = [(n, v) for n, v, lib in found if lib not in (None, "numpy")]
    foreign = bool(arrays)  # another library's arrays: NumPy arrays given alongside are converted
    if not foreign:
        arrays = [(n, v) for n, v, lib in found if lib == "numpy"]
    xp, lib = _namespace([v for _, v in arrays], [n for n, _ in arrays])
    if foreign:
        for n, v in arrays:
            if xp.isdtype(v.dtype, "complex floating"):
                raise InputError("value of %r is complex; symgrad differentiates real functions" % n)
        floats = [v.dtype for _, v in arrays if xp.isdtype(v.dtype, "real floating")]
    else:
        floats = [v.dtype for _, v in arrays if v.dtype.kind == "f"]
    dtype = xp.result_type(*floats) if floats else _default_float(xp)
    device = _device(arrays[0][1]) if arrays else None
    const = _const_maker(xp, dtype, device)

    def convert(name, v):
        if foreign and _library_of(v) == lib:
            if not xp.isdtype(v.dtype, "real floating"):
                if not xp.isdtype(v.dtype, ("integral", "bool")):
                    raise InputError("value of %r has dtype %s; pass real numbers" % (name, v.dtype))
                v = xp.astype(v, dtype)
            elif v.dtype != dtype:
                v = xp.astype(v, dtype)
            if _CHECK_FINITE and not _traced(v) and not bool(xp.all(xp.isfinite(v))):
                raise InputError("value of %r contains nan or inf; symgrad needs finite inputs" % name)
            return v
        return const(_convert(name, v))  # NumPy's checks and messages (numbers, lists, NumPy arrays)

    bound = [convert(n, v) for n, v in zip(NAMES, raw)]
    dots = None if tangents is None else {k: convert(k + " tangent", v) for k, v in tangents.items()}
    _check_bound(bound)
    return xp, lib, dtype, device, bound, dots


def _array(space, v):
    """A result as an array of the call's library: a Python number becomes a 0-d array of the
    call's dtype, and a NumPy scalar (np.sum gives one) a 0-d NumPy array."""
    v = v if hasattr(v, "shape") else space["_const"](v)
    return np.asarray(v) if isinstance(v, np.generic) else v


def _per_sample():
    return InputError("per-sample gradients (reduce=None) are not in the array-API flavour of this module; "
                      "export the function with flavour='numpy' for them, or compile with reduce='sum' or 'mean'")


def value(*args, **values):
    """The value, elementwise over a batch (a matrix-valued output: the matrix), as an array of the
    arguments' library (0-d for one number)."""
    xp, lib, dtype, device, bound, _ = _bind(args, values)
    space = _space(xp, lib, dtype, device)
    with np.errstate(all="ignore"):
        return _array(space, space["_value"](*bound))


def value_and_grad(*args, **values):
    """(value, {name: gradient}) from one reverse sweep; the value reduced like the gradients
    (sum or mean), each an array of the arguments' library."""
    if "value_and_grad" in _REFUSED:
        raise InputError(_REFUSED["value_and_grad"])
    if REDUCE is None:
        raise _per_sample()
    xp, lib, dtype, device, bound, _ = _bind(args, values)
    space = _space(xp, lib, dtype, device)
    with np.errstate(all="ignore"):
        v, grads = space["_value_and_grad"](*bound)
        v, grads = _array(space, v), [_array(space, g) for g in grads]
        if not (_MATRIX and _OUT_SIZE is None):  # a network's loss is one number, its gradients shaped already
            n = math.prod(_shape_of(v))
            v = xp.sum(v)
            if REDUCE == "mean":
                if n == 0:
                    raise _empty_batch(bound)
                v, grads = v / n, [g / n for g in grads]
    return _array(space, v), {k: _array(space, g) for k, g in zip(WRT, grads)}


def grad(*args, **values):
    """{name: gradient of the (summed or averaged) value}, each shaped like its parameter, arrays
    of the arguments' library."""
    if "grad" in _REFUSED:
        raise InputError(_REFUSED["grad"])
    if REDUCE is None:
        raise _per_sample()
    xp, lib, dtype, device, bound, _ = _bind(args, values)
    space = _space(xp, lib, dtype, device)
    with np.errstate(all="ignore"):
        grads = [_array(space, g) for g in space["_grad"](*bound)]
        if REDUCE == "mean":
            n = _count(bound)
            if n == 0:
                raise _empty_batch(bound)
            grads = [g / n for g in grads]
    return {k: _array(space, g) for k, g in zip(WRT, grads)}


def jvp(tangents, /, *args, **values):
    """(value, J·v): the directional derivative along ``tangents`` ({parameter name: tangent}, a
    missing one is zero) by forward mode, per sample; for a matrix expression the tangent of its
    value; arrays of the arguments' library."""
    _check_tangents(tangents)
    xp, lib, dtype, device, bound, given = _bind(args, values, tangents)
    space = _space(xp, lib, dtype, device)
    dots = []
    for k in WRT:
        like = bound[NAMES.index(k, len(ARGS))]
        if k not in given:
            dots.append(xp.zeros_like(like))
            continue
        _check_tangent(k, _shape_of(given[k]), _shape_of(like))
        dots.append(given[k])
    with np.errstate(all="ignore"):
        v, dot = space["_jvp"](*bound, *dots)
        v, dot = _array(space, v), _array(space, dot)
        if _shape_of(dot) != _shape_of(v):
            dot = xp.broadcast_to(dot, _shape_of(v))
    return _array(space, v), _array(space, dot)
'''

SELFCHECK = r'''

# ---- selfcheck: inputs made by a formula, each result stored as a few exact projections ----

_FAMILIES = ("mixed", "positive", "negative", "above one", "below minus one", "large")


def _entries(n, seed, family):
    """``n`` exact binary fractions for one input: a linear congruential recurrence modulo 2**32
    (integers only, the same on every platform and NumPy version) whose top bits give a size in
    (1/16, 15/16) and a sign, shifted into the family's range."""
    state = (seed * 2654435761 + 12345) % 4294967296
    out = []
    for _ in range(n):
        state = (1664525 * state + 1013904223) % 4294967296
        size = 0.0625 + (2 * (state >> 17) + 1) * 0.875 / 65536
        if family == "mixed":
            out.append(-size if (state >> 16) & 1 else size)
        elif family == "positive":
            out.append(size)
        elif family == "negative":
            out.append(-size)
        elif family == "above one":
            out.append(1 + size)
        elif family == "below minus one":
            out.append(-1 - size)
        else:  # "large"
            out.append(2 + 4 * size)
    return out


def _point(family, shapes, scales):
    """(inputs in NAMES order, tangents in WRT order) of a test vector: input i has shape
    shapes[i] and entries 2**scales[i] * _entries(..., i, family); the tangents are "mixed"."""
    def make(shape, seed, fam, scale):
        vals = [scale * e for e in _entries(math.prod(shape), seed, fam)]
        return np.array(vals).reshape(shape) if shape else vals[0]

    inputs = [make(s, i, family, 2.0 ** k) for i, (s, k) in enumerate(zip(shapes, scales))]
    tangents = [make(shapes[i], 31 + j, "mixed", 1.0) for j, i in enumerate(range(len(ARGS), len(NAMES)))]
    return inputs, tangents


def _weights(n):
    """The weights of the weighted sum: exact binary fractions in [-1, 1) from a multiplicative hash."""
    return [((k * 2654435761 + 40503) % 4294967296 >> 16) / 32768 - 1 for k in range(n)]


def _picks(n):
    """The flat indices of the stored entries: the first, the last and up to three between."""
    return sorted({0, n - 1} | {k * 2654435761 % n for k in (1, 2, 3)}) if n else []


def _projection(v):
    """A result as stored: a number as itself; an array as (shape, sum of its entries, sum of
    their absolute values, largest absolute entry, weighted sum, (the entries at _picks)), the
    sums exactly rounded (math.fsum), so equal results give equal projections everywhere."""
    a = np.asarray(v, dtype=float)
    if a.ndim == 0:
        return float(a)
    flat = a.ravel().tolist()
    n = len(flat)
    return (tuple(int(k) for k in a.shape), math.fsum(flat), math.fsum(map(abs, flat)),
            max(map(abs, flat), default=0.0), math.fsum(w * e for w, e in zip(_weights(n), flat)),
            tuple(flat[k] for k in _picks(n)))


def _differs(got, want):
    """None if ``got`` agrees with the stored ``want`` to a relative 1e-10, else why not: a number
    relative to itself; an array's sums relative to the sum of its absolute entries, its largest
    absolute entry and the picked entries relative to the largest absolute entry."""
    g = np.asarray(got, dtype=float)
    tiny = np.finfo(float).tiny
    if not isinstance(want, tuple):
        if g.shape != ():
            return "shape %s, expected a number" % (g.shape,)
        x = float(g)
        if not math.isfinite(x):
            return "got %r, expected %r (not finite)" % (x, want)
        err = abs(x - want) / max(abs(want), tiny)
        if err <= _TOLERANCE:
            return None
        return "got %r, expected %r (relative difference %.3g > %g)" % (x, want, err, _TOLERANCE)
    shape, total, l1, top, weighted, picks = want
    if g.shape != tuple(shape):
        return "shape %s, expected %s" % (g.shape, tuple(shape))
    if not np.isfinite(g).all():
        return "%d entries are nan or inf" % int(np.sum(~np.isfinite(g)))
    mine = _projection(g)
    checks = [("the sum of its entries", mine[1], total, l1),
              ("the sum of their absolute values", mine[2], l1, l1),
              ("its largest absolute entry", mine[3], top, top),
              ("its weighted sum (selfcheck's weights)", mine[4], weighted, l1)]
    for k, a, b in zip(_picks(g.size), mine[5], picks):
        index = tuple(int(i) for i in np.unravel_index(k, g.shape))
        checks.append(("its entry at index %s" % (index,), a, b, top))
    for what, a, b, scale in checks:
        err = abs(a - b) / max(scale, tiny)
        if not err <= _TOLERANCE:
            return "%s is %r, expected %r (relative difference %.3g > %g)" % (what, a, b, err, _TOLERANCE)
    return None


def selfcheck():
    """Recompute the test vectors with this module's functions (inputs from _point) and compare
    each result's projections with the stored ones; raise AssertionError naming the first that
    differs by more than a relative 1e-10."""
    if not _VECTORS:
        raise AssertionError("selfcheck: this module holds no test vector (symgrad found no point where the "
                             "value and the derivatives are finite)")
    for number, vec in enumerate(_VECTORS, 1):
        inputs, tangents = _point(*vec["point"])
        tangents = dict(zip(WRT, tangents))
        by_name = dict(zip(NAMES, inputs))
        got = {"value": value(**by_name), "jvp": jvp(tangents, *inputs)}
        checks = [("value()", got["value"], vec["value"]), ("jvp() value", got["jvp"][0], vec["value"]),
                  ("jvp() tangent", got["jvp"][1], vec["jvp"])]
        if "grad" in vec:
            reduced, grads = value_and_grad(*inputs)
            alone = grad(**by_name)
            checks.append(("value_and_grad() value", reduced, vec["reduced"]))
            for k, name in enumerate(WRT):
                checks += [("value_and_grad() gradient %r" % name, grads[name], vec["grad"][k]),
                           ("grad()[%r]" % name, alone[name], vec["grad"][k])]
        if "hvp" in vec:
            hv = hvp(tangents, **by_name)
            checks += [("hvp()[%r]" % name, hv[name], vec["hvp"][k]) for k, name in enumerate(WRT)]
        for what, g, w in checks:
            why = _differs(g, w)
            if why is not None:
                raise AssertionError("selfcheck failed: %s at test vector %d differs from the value stored at export: "
                                     "%s" % (what, number, why))
'''
