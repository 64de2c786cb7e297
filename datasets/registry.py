"""Every course data set by name: official files, checksums, loader and stand-in generator.

A :class:`Dataset` says where its official files come from (URLs, sha256 and
size where they could be verified from public material), which folder of the
data directory holds it (the layout of ``../shared/data`` and of the official
downloads), how to load it, and how to write a small stand-in **in the official
format** when no copy exists. :func:`materialize` returns a folder that holds a
complete copy (the real one when found, else a generated one, made with the
real parts that exist, e.g. COCO's real vocabulary) and says which it is;
:func:`load` loads it. Graders record that description in every report.

Registered: ``cifar10``, ``mnist``, ``fashion_mnist``, ``imagenet_val_25``,
``styles``, ``coco_captioning``. A later assignment's data set registers the
same way: a :class:`Dataset` in :data:`REGISTRY` with its loader and generator.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import DataNotFound
from . import data_dir as _default_data_dir
from . import idx as _idx
from .download import ChecksumError, DownloadError, fetch

__all__ = [
    "REGISTRY", "Dataset", "Located", "OfficialFile", "download", "find", "generate", "get",
    "load", "materialize", "names",
]  # fmt: skip


@dataclass(frozen=True)
class OfficialFile:
    """One file of the official distribution.

    ``sha256`` is None where no checksum could be verified from public material:
    :func:`download` then refuses to fetch it (the course never trusts an
    unverified download) and says where to get it by hand.
    """

    name: str
    urls: tuple[str, ...]
    sha256: str | None
    size: int | None
    provenance: str


@dataclass(frozen=True)
class Dataset:
    """A registered data set (see the module docstring)."""

    name: str
    title: str
    folder: str  # its folder in the data directory
    files: tuple[str, ...]  # what a complete copy holds, relative to the folder
    official: tuple[OfficialFile, ...]
    loader: Callable[[Path], Any]
    generator: Callable[[Path, Path | None, int], str]  # (dest, partial real copy, seed) -> note
    local_sources: tuple[Path, ...] = ()  # other places a complete copy may be installed
    citation: str = ""

    def is_complete(self, folder: Path) -> bool:
        """Whether ``folder`` holds every file of a complete copy."""
        return folder.is_dir() and all((folder / f).is_file() for f in self.files)


@dataclass(frozen=True)
class Located:
    """A folder holding a complete copy, and what it is made of (for reports)."""

    name: str
    folder: Path
    generated: bool
    source: str


# ----------------------------------------------------------------------------- MNIST-like


def _idx_files() -> tuple[str, ...]:
    return tuple(f"{s}-{k}-idx{d}-ubyte.gz" for s in ("train", "t10k")
                 for k, d in (("images", 3), ("labels", 1)))  # fmt: skip


def _load_idx_set(folder: Path) -> dict[str, np.ndarray]:
    """``X_train`` (N, 28, 28) uint8, ``y_train`` int64, ``X_test``, ``y_test``."""
    out = {}
    for split, key in (("train", "train"), ("t10k", "test")):
        X = _idx.read_idx(folder / f"{split}-images-idx3-ubyte.gz")
        y = _idx.read_idx(folder / f"{split}-labels-idx1-ubyte.gz").astype(np.int64)
        if X.ndim != 3 or y.ndim != 1 or len(X) != len(y) or X.dtype != np.uint8:
            raise _idx.MalformedIdxError(
                f"{folder}: {split} images {X.dtype}{X.shape} do not match labels {y.shape}")
        out[f"X_{key}"], out[f"y_{key}"] = X, y
    return out


def _glyphs(rng: np.random.Generator, side: int = 28) -> np.ndarray:
    """Ten distinct stroke patterns (side, side) in 0..1: random smooth curves, one per class."""
    yy, xx = np.mgrid[0:side, 0:side] / (side - 1)
    glyphs = np.zeros((10, side, side))
    for k in range(10):
        t = np.linspace(0, 1, 60)
        a, b = rng.uniform(0.15, 0.35, 2)
        fx, fy = rng.integers(1, 4, 2)
        cx = 0.5 + a * np.sin(2 * np.pi * (fx * t + rng.random()))
        cy = 0.5 + b * np.cos(2 * np.pi * (fy * t + rng.random()))
        for x, y in zip(cx, cy, strict=True):
            glyphs[k] = np.maximum(glyphs[k], np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 0.002))
    return glyphs


def _generate_idx_set(dest: Path, partial: Path | None, seed: int,
                      n_train: int = 1000, n_test: int = 500) -> str:
    del partial  # an incomplete idx set is not mixed with generated files
    rng = np.random.default_rng(seed)
    glyphs = _glyphs(rng)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        images = np.empty((n, 28, 28))
        for i, label in enumerate(labels):
            dy, dx = rng.integers(-2, 3, 2)
            images[i] = np.roll(glyphs[label], (int(dy), int(dx)), axis=(0, 1)) * rng.uniform(0.6, 1)
        images = 255 * np.clip(images + rng.normal(0, 0.15, images.shape), 0, 1)
        _idx.write_idx(dest / f"{split}-images-idx3-ubyte.gz", np.rint(images).astype(np.uint8))
        _idx.write_idx(dest / f"{split}-labels-idx1-ubyte.gz", labels)
    return f"{n_train} training and {n_test} test images"


# ----------------------------------------------------------------------------- ImageNet 25


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, dtypes and scalars, ints, strings and dicts; nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol 2-3 pickles spell bytes (numpy scalars)
    }  # fmt: skip

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def _load_imagenet(folder: Path) -> dict[str, Any]:
    """``X`` (25, 224, 224, 3) uint8, ``y`` (25,) int64, ``label_map`` {int: str}.

    ``label_map`` is a pickled object array in the official file: it is read
    with an unpickler that can only rebuild numpy arrays, scalars and plain
    containers (``np.load(allow_pickle=True)`` would run any global).
    """
    path = folder / "imagenet_val_25.npz"
    with np.load(path, allow_pickle=False) as data:
        X, y = data["X"], data["y"].astype(np.int64)
    with zipfile.ZipFile(path) as zf, zf.open("label_map.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        _shape, _fortran, dtype = read_header(f)
        if dtype != np.dtype(object):
            raise ValueError(f"{path}: label_map is {dtype}, expected a pickled dict")
        obj = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    label_map = obj.item() if isinstance(obj, np.ndarray) else obj
    if not isinstance(label_map, dict):
        raise ValueError(f"{path}: label_map is a {type(label_map).__name__}, expected a dict")
    if X.dtype != np.uint8 or X.ndim != 4 or X.shape[3] != 3 or y.shape != (len(X),):
        raise ValueError(f"{path}: X {X.dtype}{X.shape} / y {y.shape} are not N RGB images")
    return {"X": X, "y": y, "label_map": {int(k): str(v) for k, v in label_map.items()}}


def _generate_imagenet(dest: Path, partial: Path | None, seed: int) -> str:
    del partial
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:224, 0:224] / 223.0
    X = np.empty((25, 224, 224, 3), np.uint8)
    for i in range(25):
        c0, c1 = rng.uniform(0, 255, (2, 3))
        angle = rng.uniform(0, np.pi)
        ramp = (xx * np.cos(angle) + yy * np.sin(angle))[..., None] / 1.5
        cy, cx, r = rng.uniform(0.3, 0.7, 3) * (1, 1, 0.4)
        blob = (((yy - cy) ** 2 + (xx - cx) ** 2) < r**2)[..., None]
        img = c0 * (1 - ramp) + c1 * ramp + blob * rng.uniform(-90, 90, 3)
        X[i] = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    y = rng.choice(1000, 25, replace=False).astype(np.int64)
    label_map = {k: f"stand-in class {k}" for k in range(1000)}
    dest.mkdir(parents=True, exist_ok=True)
    _save_atomic(dest / "imagenet_val_25.npz",
                 lambda f: np.savez(f, X=X, y=y, label_map=np.array(label_map, dtype=object)))
    return "25 synthetic 224x224 images"


# ----------------------------------------------------------------------------- styles

STYLE_IMAGES = ("composition_vii.jpg", "starry_night.jpg", "the_scream.jpg", "tubingen.jpg")


def _load_styles(folder: Path) -> dict[str, np.ndarray]:
    """{file stem: (H, W, 3) uint8 RGB array} of the style-transfer images."""
    from PIL import Image

    out = {}
    for name in STYLE_IMAGES:
        with Image.open(folder / name) as im:
            if im.format != "JPEG":
                raise ValueError(f"{folder / name}: a {im.format} image, expected JPEG")
            out[Path(name).stem] = np.asarray(im.convert("RGB"))
    return out


def _generate_styles(dest: Path, partial: Path | None, seed: int) -> str:
    from PIL import Image

    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in STYLE_IMAGES:
        if partial is not None and (partial / name).is_file():
            _save_atomic(dest / name, lambda f, p=partial / name: f.write(p.read_bytes()))
            copied.append(name)
            continue
        h, w = (256, 192) if name == "tubingen.jpg" else (192, 256)
        yy, xx = np.mgrid[0:h, 0:w]
        freq = rng.uniform(0.02, 0.2, (3, 2))
        img = np.stack([127 + 100 * np.sin(freq[c, 0] * xx + freq[c, 1] * yy + c) for c in range(3)], -1)
        pixels = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
        _save_atomic(dest / name, lambda f, a=pixels: Image.fromarray(a).save(f, "JPEG", quality=90))
    return f"synthetic JPEGs{'; real: ' + ', '.join(copied) if copied else ''}"


# ----------------------------------------------------------------------------- COCO

COCO_CAPTIONS = "coco2014_captions.h5"
COCO_VOCAB = "coco2014_vocab.json"
COCO_FEATURES = {"train": "train2014_vgg16_fc7_pca.h5", "val": "val2014_vgg16_fc7_pca.h5"}
COCO_URLS = {"train": "train2014_urls.txt", "val": "val2014_urls.txt"}
#: The real file's caption length: <START>, up to 15 words, <END>, <NULL> padding.
COCO_CAPTION_LENGTH = 17
COCO_FEATURE_DIM = 512
_COCO_PREFIX = "train2014_vgg16_fc7_pca.prefix*.h5"  # a real prefix of the train features


def _load_coco(folder: Path) -> dict[str, Any]:
    """CS231n's ``load_coco_data`` dictionary (PCA features): captions, image indices,
    features, vocabulary and image URLs of both splits."""
    import h5py

    data: dict[str, Any] = {}
    with h5py.File(folder / COCO_CAPTIONS, "r") as f:
        for key in ("train_captions", "train_image_idxs", "val_captions", "val_image_idxs"):
            data[key] = np.asarray(f[key])
    for split, name in COCO_FEATURES.items():
        with h5py.File(folder / name, "r") as f:
            data[f"{split}_features"] = np.asarray(f["features"])
    vocab = json.loads((folder / COCO_VOCAB).read_text(encoding="utf-8"))
    data["idx_to_word"], data["word_to_idx"] = vocab["idx_to_word"], vocab["word_to_idx"]
    for split, name in COCO_URLS.items():
        data[f"{split}_urls"] = np.array((folder / name).read_text(encoding="utf-8").split())
    for split in ("train", "val"):
        caps, idxs = data[f"{split}_captions"], data[f"{split}_image_idxs"]
        n_img = len(data[f"{split}_features"])
        if caps.ndim != 2 or len(caps) != len(idxs) or (idxs.size and not 0 <= idxs.min() <= idxs.max() < n_img):
            raise ValueError(f"{folder}: {split} captions {caps.shape} / image indices do not "
                             f"match {n_img} feature rows")
        if caps.size and caps.max() >= len(data["idx_to_word"]):
            raise ValueError(f"{folder}: {split} captions use words beyond the vocabulary")
    return data


def _generate_coco(dest: Path, partial: Path | None, seed: int,
                   n_images: dict[str, int] | None = None) -> str:
    import h5py

    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    real = []
    vocab_path = partial / COCO_VOCAB if partial is not None else None
    if vocab_path is not None and vocab_path.is_file():
        vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
        real.append("the vocabulary")
    else:
        words = ["<NULL>", "<START>", "<END>", "<UNK>"] + [f"w{i}" for i in range(1000)]
        vocab = {"idx_to_word": words, "word_to_idx": {w: i for i, w in enumerate(words)}}
    _save_atomic(dest / COCO_VOCAB, lambda f: f.write(json.dumps(vocab).encode()))
    sizes = dict(n_images or {"train": 400, "val": 200})
    for split in ("train", "val"):
        name = COCO_FEATURES[split]
        found = sorted(partial.glob(_COCO_PREFIX)) if partial is not None and split == "train" else []
        if partial is not None and (partial / name).is_file():
            found = [partial / name]
        if found:
            with h5py.File(found[0], "r") as f:
                feats = np.asarray(f["features"], dtype=np.float32)
            real.append(f"{len(feats)} {split} feature rows")
        else:
            feats = rng.normal(0, 1, (sizes[split], COCO_FEATURE_DIM)).astype(np.float32)
        sizes[split] = len(feats)
        _save_h5(dest / name, {"features": feats})
        urls = "\n".join(f"http://images.cocodataset.org/{split}2014/stand-in_{i:06d}.jpg"
                         for i in range(len(feats)))  # fmt: skip
        _save_atomic(dest / COCO_URLS[split], lambda f, u=urls: f.write(u.encode() + b"\n"))
    n_words = len(vocab["idx_to_word"])
    captions: dict[str, np.ndarray] = {}
    for split in ("train", "val"):
        n_img = sizes[split]
        idxs = np.repeat(np.arange(n_img, dtype=np.int32), 2)  # two captions per image
        caps = np.zeros((len(idxs), COCO_CAPTION_LENGTH), np.int32)  # <NULL> = 0
        for row, img in enumerate(idxs):
            length = int(rng.integers(5, COCO_CAPTION_LENGTH - 1))
            topic = np.random.default_rng(seed * 1000003 + int(img)).integers(4, n_words, 4)
            caps[row, 0] = 1  # <START>
            caps[row, 1:1 + length] = np.where(rng.random(length) < 0.5, rng.choice(topic, length),
                                               rng.integers(4, n_words, length))
            caps[row, 1 + length] = 2  # <END>
        captions[f"{split}_captions"], captions[f"{split}_image_idxs"] = caps, idxs
    _save_h5(dest / COCO_CAPTIONS, captions)
    return "generated captions" + (f"; real: {', '.join(real)}" if real else "")


# ----------------------------------------------------------------------------- helpers


def _save_atomic(path: Path, write: Callable[[Any], Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".part",
                                     delete=False) as f:  # fmt: skip
        tmp = Path(f.name)
        try:
            write(f)
        except BaseException:
            f.close()
            tmp.unlink(missing_ok=True)
            raise
    tmp.replace(path)


def _save_h5(path: Path, arrays: dict[str, np.ndarray]) -> None:
    import h5py

    tmp = path.with_name(f".{path.name}.part")
    try:
        with h5py.File(tmp, "w") as f:
            for key, value in arrays.items():
                f.create_dataset(key, data=value)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _cifar_loader(folder: Path) -> Any:
    from . import cifar10

    return cifar10.load(folder)


def _cifar_generator(dest: Path, partial: Path | None, seed: int) -> str:
    from . import cifar10

    del partial
    cifar10.write_fixture(dest, n_per_batch=1000, n_test=500, seed=seed)
    return "5 x 1000 training and 500 test images"


# ----------------------------------------------------------------------------- the registry

_MNIST_MIRRORS = ("https://storage.googleapis.com/cvdf-datasets/mnist/",
                  "https://ossci-datasets.s3.amazonaws.com/mnist/")  # fmt: skip
# sha256 of the official gzip files: the same values are pinned by many independent
# projects next to the sizes on LeCun's page; the t10k pair was also checked here
# against the course's offline copy, whose md5 matches the official md5.
_MNIST_SHA = {
    "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
    "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
    "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
}
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# sha256 of the official files as pinned by several independent projects next to
# the md5 published in zalandoresearch/fashion-mnist's README; sizes only where
# verified (the training images: 26,421,880 bytes).
_FASHION_SHA = {
    "train-images-idx3-ubyte.gz": ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
    "train-labels-idx1-ubyte.gz": ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", None),
    "t10k-images-idx3-ubyte.gz": ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", None),
    "t10k-labels-idx1-ubyte.gz": ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", None),
}
_CS231N = "http://cs231n.stanford.edu/"
_UNVERIFIED = ("no checksum is published for this file and none could be verified from "
               "public material: not downloaded automatically")  # fmt: skip


def _cifar_official() -> tuple[OfficialFile, ...]:
    from . import cifar10

    return (OfficialFile(cifar10.ARCHIVE_NAME, (cifar10.URL,), cifar10.ARCHIVE_SHA256,
                         cifar10.ARCHIVE_SIZE, "see coursedata.cifar10"),)  # fmt: skip


REGISTRY: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("cifar10", "CIFAR-10", "cifar-10-batches-py",
                ("test_batch", "data_batch_1"), _cifar_official(), _cifar_loader,
                _cifar_generator,
                citation="Krizhevsky (2009), Learning Multiple Layers of Features from Tiny Images"),
        Dataset("mnist", "MNIST", "mnist", _idx_files(),
                tuple(OfficialFile(n, tuple(m + n for m in _MNIST_MIRRORS), s, z,
                                   "sha256 pinned by independent projects; t10k checked locally")
                      for n, (s, z) in _MNIST_SHA.items()),
                _load_idx_set, _generate_idx_set),
        Dataset("fashion_mnist", "Fashion-MNIST", "fashion-mnist", _idx_files(),
                tuple(OfficialFile(n, (_FASHION_URL + n,), s, z,
                                   "sha256 pinned by independent projects with the official md5")
                      for n, (s, z) in _FASHION_SHA.items()),
                _load_idx_set, _generate_idx_set,
                local_sources=(Path("/usr/share/datasets/fashion-mnist"),),  # Debian: dataset-fashion-mnist
                citation="Xiao, Rasul, Vollgraf (2017), Fashion-MNIST (MIT licence, Zalando SE)"),
        Dataset("imagenet_val_25", "ImageNet validation (25 images)", "imagenet",
                ("imagenet_val_25.npz",),
                (OfficialFile("imagenet_val_25.npz", (_CS231N + "imagenet_val_25.npz",), None, None,
                              _UNVERIFIED),),
                _load_imagenet, _generate_imagenet),
        Dataset("styles", "style-transfer images", "styles", STYLE_IMAGES,
                tuple(OfficialFile(n, (), None, None, "shipped inside CS231n's assignment 3 "
                                   "archive; " + _UNVERIFIED) for n in STYLE_IMAGES),
                _load_styles, _generate_styles),
        Dataset("coco_captioning", "COCO captioning (CS231n layout)", "coco_captioning",
                (COCO_CAPTIONS, COCO_VOCAB, *COCO_FEATURES.values(), *COCO_URLS.values()),
                (OfficialFile("coco_captioning.zip", (_CS231N + "coco_captioning.zip",), None,
                              None, _UNVERIFIED),),
                _load_coco, _generate_coco,
                citation="Lin et al. (2014), Microsoft COCO; annotations CC BY 4.0"),
    )
}


def names() -> list[str]:
    """The registered data set names."""
    return list(REGISTRY)


def get(name: str) -> Dataset:
    """The registered data set ``name`` (ValueError naming the registered ones otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; registered: {', '.join(REGISTRY)}") from None


def _root(data_dir: Path | str | None) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else _default_data_dir()


def _candidates(ds: Dataset, data_dir: Path | str | None) -> list[Path]:
    root = _root(data_dir)
    return [root / ds.folder, *([root] if root.name == ds.folder else []), *ds.local_sources]


def find(name: str, data_dir: Path | str | None = None) -> Path:
    """The folder of a complete copy of ``name``: in the data directory (``<dir>/<folder>``,
    or ``<dir>`` itself when it is that folder), else one of its local sources.

    Raises:
        DataNotFound: no complete copy (the message names the places searched).
    """
    ds = get(name)
    if ds.name == "cifar10":
        from . import cifar10

        return cifar10.find(_root(data_dir))
    places = _candidates(ds, data_dir)
    for folder in places:
        if ds.is_complete(folder):
            return folder
    raise DataNotFound(name, places, f"{ds.folder}/ with {', '.join(ds.files)}")


def _partial(ds: Dataset, data_dir: Path | str | None) -> Path | None:
    for folder in _candidates(ds, data_dir):
        if folder.is_dir() and any(folder.iterdir()):
            return folder
    return None


def generate(name: str, dest: Path | str, *, seed: int = 0, partial: Path | None = None) -> Located:
    """Write a stand-in of ``name`` in its official format into the folder ``dest``.

    ``partial`` is a folder with some real files to reuse (COCO's vocabulary and
    feature rows, style images). Deterministic for a seed.
    """
    ds = get(name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    note = ds.generator(dest, partial, seed)
    where = f" from {partial}" if partial is not None else ""
    return Located(name, dest, True,
                   f"generated stand-in in {ds.title}'s official format ({note}{where}; "
                   f"no complete {ds.title} found)")


def materialize(name: str, data_dir: Path | str | None = None, scratch: Path | str | None = None,
                *, seed: int = 0) -> Located:
    """A complete copy of ``name``: the real one when found, else a stand-in generated
    (with the real parts there are) in a new folder under ``scratch`` (default: the
    system's temporary directory)."""
    ds = get(name)
    try:
        folder = find(name, data_dir)
    except DataNotFound:
        dest = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch)) / ds.folder
        return generate(name, dest, seed=seed, partial=_partial(ds, data_dir))
    return Located(name, folder, False, f"{ds.title} from {folder}")


def load(name: str, data_dir: Path | str | None = None, scratch: Path | str | None = None,
         *, seed: int = 0) -> tuple[Any, str]:
    """``(data, source)``: ``name`` loaded by its loader, and what it was loaded from."""
    located = materialize(name, data_dir, scratch, seed=seed)
    return get(name).loader(located.folder), located.source


def download(name: str, data_dir: Path | str | None = None, *, progress: bool = True) -> Path:
    """Fetch the official files of ``name`` into ``<data dir>/<folder>``, verified by sha256.

    Raises:
        DownloadError: a file has no verified checksum (the message says where to
            get it by hand), or the transfer failed on every mirror.
    """
    ds = get(name)
    if ds.name == "cifar10":
        from . import cifar10

        return cifar10.download(_root(data_dir), progress=progress)
    folder = _root(data_dir) / ds.folder
    for official in ds.official:
        if official.sha256 is None or not official.urls:
            where = ", ".join(official.urls) or "the course's archive"
            raise DownloadError(f"{name}: {official.name}: {official.provenance}; get it from "
                                f"{where} and put it in {folder}")
        errors: list[DownloadError] = []
        for url in official.urls:  # mirrors in order
            try:
                fetch(url, folder / official.name, official.sha256, size=official.size,
                      progress=progress)
                break
            except DownloadError as exc:
                errors.append(exc)
        else:
            bad = [e for e in errors if isinstance(e, ChecksumError)]
            raise (ChecksumError if bad else DownloadError)("; ".join(map(str, errors)))
    return folder


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file (for checking a local copy against :class:`OfficialFile`)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
