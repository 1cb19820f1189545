"""Read the pickles of public dataset releases without letting them run code.

`pickle.load` executes whatever the file asks for; a dataset downloaded from the internet must not get that power.
`load_plain_pickle` admits only the plain containers a data release needs (dict, list, tuple, set, str, int, float,
bool, None, bytes); any other global (a class, a function such as `os.system`) is refused before it is looked up.
"""
from __future__ import annotations

import pickle
from pathlib import Path

from .errors import DataFormatError

# The only globals a plain-data pickle may name: the builtin container and scalar types.
_ALLOWED_GLOBALS = {("builtins", n) for n in ("dict", "list", "tuple", "set", "frozenset", "str", "int", "float",
                                              "bool", "bytes", "bytearray", "complex")}


class _PlainDataUnpickler(pickle.Unpickler):
    def __init__(self, file, path: Path):
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise DataFormatError(self._path, f"refused to load {module}.{name}: this pickle carries an object that is "
                              "not plain data, and loading it could run code",
                              expected="only dict/list/tuple/set/str/int/float/bool/bytes")

    def persistent_load(self, pid):
        raise DataFormatError(self._path, "refused a persistent id: not plain data")


def load_plain_pickle(path: str | Path):
    """Unpickle `path`, admitting plain data only; raises `DataFormatError` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    with open(path, "rb") as f:
        try:
            return _PlainDataUnpickler(f, path).load()
        except DataFormatError:
            raise
        except Exception as e:  # truncated or not a pickle at all
            raise DataFormatError(path, f"not a readable pickle ({type(e).__name__}: {e})") from e
