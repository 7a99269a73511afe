"""Reads a PyTorch `pytorch_model.bin` (zip format, torch >= 1.6) into numpy without torch.

PyTorch's format is a zip holding `data.pkl` (a pickle whose tensors point at storages through
`persistent_load`) and one raw little-endian file per storage under `data/`. We unpickle with an
allow-list of the few globals a state dict uses, so a hostile file cannot run code, and copy each
tensor out of its storage only after checking that its offset, shape and strides stay inside
that storage (a truncated or crafted file is refused, naming the tensor).
"""

import collections
import io
import pickle
import zipfile
import zlib

import numpy as np

from keras_bert_x.errors import BertInputError, first_line

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


class _TensorRef:
    """A tensor as the pickle describes it; checked and copied out once its name is known."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def to_numpy(self, name, where):
        def bad(reason):
            return BertInputError(f"{where}: tensor '{name}' {reason}")

        storage, offset, size, stride = self.storage, self.offset, self.size, self.stride
        if not isinstance(storage, np.ndarray):
            raise bad("does not point at a storage")
        ints = isinstance(size, (tuple, list)) and isinstance(stride, (tuple, list)) and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for v in (offset, *size, *stride))
        if not ints or len(size) != len(stride) or len(size) > 8:
            raise bad(f"has an invalid layout (offset {offset!r}, size {size!r}, "
                      f"stride {stride!r})")
        numel = int(np.prod(size, dtype=object)) if size else 1
        if numel == 0:
            if offset > len(storage):
                raise bad(f"starts at element {offset}, past its storage of {len(storage)}")
            return np.zeros(tuple(size), storage.dtype)
        # The last element read, and the element count, must both fit the storage: a crafted
        # header could otherwise read memory outside it, or (stride 0) ask for a huge copy.
        extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
        if extent > len(storage):
            raise bad(f"reads elements up to {extent} but its storage holds {len(storage)} "
                      "(truncated or corrupt file)")
        if numel > len(storage):
            raise bad(f"has {numel} elements but its storage holds {len(storage)}")
        itemsize = storage.dtype.itemsize
        return np.lib.stride_tricks.as_strided(
            storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)).copy()


def _rebuild_tensor(storage, offset, size, stride, *unused):
    return _TensorRef(storage, offset, size, stride)


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
        if not isinstance(pid, tuple) or len(pid) < 3 or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.60}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError("storage without a storage type")
        if key not in self._storages:
            member = f"{self._root}/data/{key}" if self._root else f"data/{key}"
            raw = _read_member(self._archive, member)
            dtype = np.dtype(storage_type.dtype)
            if len(raw) % dtype.itemsize:
                raise pickle.UnpicklingError(f"storage {member} holds {len(raw)} bytes, not a "
                                             f"whole number of {dtype} values")
            self._storages[key] = np.frombuffer(raw, dtype=dtype)
        return self._storages[key]


# A zip member may be compressed; BERT weights do not compress beyond a few percent, so a
# member claiming far more bytes than it occupies is a zip bomb, not a checkpoint.
MAX_COMPRESSION_RATIO = 20
MAX_PICKLE_BYTES = 64 << 20
MAX_VIEWS_PER_STORAGE = 4


def _read_member(archive, name, limit=None):
    info = archive.getinfo(name)
    if limit is not None and info.file_size > limit:
        raise pickle.UnpicklingError(f"{name} is {info.file_size} bytes (more than {limit})")
    if info.compress_type != zipfile.ZIP_STORED and \
            info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
        raise pickle.UnpicklingError(f"{name} expands {info.file_size} bytes from "
                                     f"{info.compress_size}")
    return archive.read(name)


def load_torch_state_dict(path):
    """{name: numpy array} from a zip-format PyTorch checkpoint; BertInputError if unreadable."""
    if not zipfile.is_zipfile(path):
        raise BertInputError(f"{path}: not a zip-format PyTorch checkpoint (legacy or truncated "
                             "file; re-save it with torch >= 1.6 or as safetensors)")
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = next(n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
            root = pkl[: -len("/data.pkl")] if "/" in pkl else ""
            data = _read_member(archive, pkl, MAX_PICKLE_BYTES)
            state = _Unpickler(io.BytesIO(data), archive, root).load()
    except StopIteration:
        raise BertInputError(f"{path}: no data.pkl inside; not a PyTorch checkpoint") from None
    except (pickle.UnpicklingError, zipfile.BadZipFile, KeyError, EOFError, ValueError,
            TypeError, IndexError, AttributeError, zlib.error) as e:
        raise BertInputError(f"{path}: cannot read PyTorch checkpoint ({first_line(e)})") from None
    if not isinstance(state, dict):
        raise BertInputError(f"{path}: holds a {type(state).__name__}, not a state dict")
    # Each tensor fits its storage; many entries viewing one storage could still add up to a
    # huge copy. Tied weights view a storage twice at most: allow a few times the storages.
    budget = MAX_VIEWS_PER_STORAGE * sum(v.nbytes for v in _storages_of(state))
    tensors = {}
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, _TensorRef):
            raise BertInputError(f"{path}: entry {name!r:.60} is not a named tensor")
        tensors[name] = value.to_numpy(name, path)
        budget -= tensors[name].nbytes
        if budget < 0:
            raise BertInputError(f"{path}: tensor '{name}' takes the tensors past "
                                 f"{MAX_VIEWS_PER_STORAGE}x the bytes of their storages "
                                 "(crafted file?)")
    return tensors


def _storages_of(state):
    """The distinct storages the state's tensors view."""
    seen = {}
    for value in state.values():
        storage = getattr(value, "storage", None)
        if isinstance(storage, np.ndarray):
            seen[id(storage)] = storage
    return seen.values()
