"""Reads a PyTorch `pytorch_model.bin` (zip format, torch >= 1.6) into numpy without torch.

PyTorch's format is a zip holding `data.pkl` (a pickle whose tensors point at storages through
`persistent_load`) and one raw little-endian file per storage under `data/`. We unpickle with an
allow-list of the few globals a state dict uses, so a hostile file cannot run code, and rebuild
each tensor as a numpy view of its storage.
"""

import collections
import pickle
import zipfile

import numpy as np

from keras_bert_x.errors import BertInputError

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


def _bfloat16():
    import ml_dtypes  # ships with TensorFlow

    return ml_dtypes.bfloat16


class _StorageType:
    def __init__(self, name):
        self.name = name

    @property
    def dtype(self):
        if self.name == "BFloat16Storage":
            return _bfloat16()
        if self.name not in _STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"unsupported storage type {self.name}")
        return _STORAGE_DTYPES[self.name]


def _rebuild_tensor(storage, offset, size, stride, *unused):
    if not size:
        return storage[offset:offset + 1].reshape(())
    itemsize = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)).copy()


def _rebuild_parameter(data, *unused):
    return data


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive, root):
        super().__init__(file)
        self._archive, self._root, self._storages = archive, root, {}

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid):
        kind, storage_type, key = pid[0], pid[1], pid[2]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
        if key not in self._storages:
            raw = self._archive.read(f"{self._root}/data/{key}")
            self._storages[key] = np.frombuffer(raw, dtype=storage_type.dtype)
        return self._storages[key]


def load_torch_state_dict(path):
    """{name: numpy array} from a zip-format PyTorch checkpoint; BertInputError if unreadable."""
    if not zipfile.is_zipfile(path):
        raise BertInputError(f"{path}: not a zip-format PyTorch checkpoint (legacy or truncated "
                             "file; re-save it with torch >= 1.6 or as safetensors)")
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = next(n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
            root = pkl[: -len("/data.pkl")] if "/" in pkl else ""
            with archive.open(pkl) as f:
                state = _Unpickler(f, archive, root).load()
    except StopIteration:
        raise BertInputError(f"{path}: no data.pkl inside; not a PyTorch checkpoint") from None
    except (pickle.UnpicklingError, zipfile.BadZipFile, KeyError, EOFError, ValueError) as e:
        raise BertInputError(f"{path}: cannot read PyTorch checkpoint ({e})") from None
    if not isinstance(state, dict):
        raise BertInputError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state
