"""Saving and loading parameters: `save` and `load` write and read NumPy ``.npz`` files, names and dtypes kept.

The file is an ordinary ``.npz`` (one ``name.npy`` per parameter, in order), so
``np.load`` reads it too; nothing is pickled. `load` with ``like=`` refuses a file whose
names or shapes do not fit a network (or a dict of parameters).

>>> import numpy as np, os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "params")
>>> save({"W1": np.eye(2, dtype=np.float32), "b1": np.zeros((1, 2))}, path)   # doctest: +ELLIPSIS
'...params.npz'
>>> {k: (v.dtype.name, v.shape) for k, v in load(path + ".npz").items()}
{'W1': ('float32', (2, 2)), 'b1': ('float64', (1, 2))}
"""

import os
import zipfile

import numpy as np

from symgrad.errors import InputError


def _check_name(name):
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise InputError(f"parameter name {name!r} cannot be saved: names must be non-empty strings without / or \\")


def save(params, path):
    """Write ``params`` (name -> array) to ``path`` as ``.npz`` (the suffix is added if missing); returns the path written.

    Every array keeps its name, shape and dtype exactly; an existing file is replaced.
    Raises InputError for an empty dict, a name that cannot be a file entry, or a value
    that is not a numeric array (object arrays are refused: nothing is pickled).

    >>> import os, tempfile
    >>> p = save({"w": np.arange(3.0)}, os.path.join(tempfile.mkdtemp(), "w.npz"))
    >>> load(p)["w"].tolist()
    [0.0, 1.0, 2.0]
    """
    if not isinstance(params, dict) or not params:
        raise InputError(f"save needs a non-empty dict name -> array (e.g. history.params); got {type(params).__name__}")
    arrays = {}
    for name, value in params.items():
        _check_name(name)
        a = np.asarray(value)
        if a.dtype.kind not in "biufc":
            raise InputError(f"parameter {name!r} has dtype {a.dtype}; save writes numeric arrays only")
        arrays[name] = a
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, a in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, a, allow_pickle=False)
    os.replace(tmp, path)   # a crash mid-write never leaves a half-written file under the real name
    return path


def _expected_shapes(like):
    shapes = getattr(like, "shapes", None)   # a symgrad.nn.Network
    if isinstance(shapes, dict):
        return {k: tuple(v) for k, v in shapes.items()}
    if isinstance(like, dict):
        return {k: tuple(v) if isinstance(v, tuple) else np.shape(v) for k, v in like.items()}
    raise InputError(f"like must be a symgrad.nn Network or a dict name -> array or shape; got {type(like).__name__}")


def load(path, like=None):
    """The parameters saved by `save`: {name: array} in the order saved, with their dtypes.

    ``like``: a network (``symgrad.nn.mlp(...)``) or a dict name -> array or shape; the
    file must then hold exactly those names with those shapes. Raises InputError when the
    file cannot be read, is not an ``.npz`` of arrays, or does not fit ``like`` (naming
    the missing, extra or misshapen parameter).

    >>> import os, tempfile
    >>> p = save({"w": np.zeros(2)}, os.path.join(tempfile.mkdtemp(), "w"))
    >>> load(p, like={"w": (3,)})
    Traceback (most recent call last):
    ...
    symgrad.errors.InputError: parameter 'w' has shape (2,) in ...w.npz but (3,) is expected; this file was saved from another architecture
    """
    path = os.fspath(path)
    try:
        f = np.load(path, allow_pickle=False)
        if not hasattr(f, "files"):
            raise InputError(f"{path} holds a single array, not named parameters; write parameters with symgrad.train.save")
        with f:
            params = {name: f[name] for name in f.files}
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"no parameter file {path}; check the path (save adds .npz to the name)") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read parameters from {path}: {exc}; it must be an .npz written by symgrad.train.save "
                         f"or numpy.savez") from None
    if not params:
        raise InputError(f"{path} holds no parameters")
    if like is not None:
        expected = _expected_shapes(like)
        missing = [k for k in expected if k not in params]
        if missing:
            raise InputError(f"{path} has no parameter {missing[0]!r}; it holds {', '.join(params)} but "
                             f"{', '.join(expected)} are expected")
        extra = [k for k in params if k not in expected]
        if extra:
            raise InputError(f"{path} holds {extra[0]!r}, which is not a parameter here (expected {', '.join(expected)})")
        for k, shape in expected.items():
            if params[k].shape != shape:
                raise InputError(f"parameter {k!r} has shape {params[k].shape} in {path} but {shape} is expected; "
                                 f"this file was saved from another architecture")
        params = {k: params[k] for k in expected}
    return params
