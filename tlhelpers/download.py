"""Download a public image dataset once, pinned by SHA-256, and find its class folders.

:func:`download` returns the folder to pass to :func:`tlhelpers.data.load_image_folder`.
``keras.utils.get_file`` downloads the archive and checks its SHA-256. What it does not do is
done here: it extracts again at every call (here an extraction is kept and reused), skips unsafe
members with a warning (here the archive is refused), and extracts in place (here into a
temporary folder renamed only when complete, so a broken archive leaves no half-extracted
folder behind). The archive stays in ``data_dir``, where it also serves as the offline copy.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import keras

from tlhelpers.images import IMAGE_SUFFIXES
from tlhelpers.runtime import default_dir


class DownloadError(RuntimeError):
    """A dataset could not be downloaded, verified or extracted."""


@dataclass(frozen=True)
class RemoteDataset:
    """A dataset archive pinned by address, size and SHA-256."""

    url: str
    sha256: str
    size: int
    about: str


# Sizes and SHA-256 from TensorFlow Datasets' published checksum lists,
# github.com/tensorflow/datasets/blob/master/tensorflow_datasets/url_checksums/{tf_flowers,imagenette}.txt
# (tf_flowers.txt lists the http:// address of the same file on download.tensorflow.org).
DATASETS: dict[str, RemoteDataset] = {
    "flowers": RemoteDataset(
        url="https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz",
        sha256="4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c",
        size=228_813_984,
        about="TensorFlow's flower photos: 3,670 photos, 5 classes; CC BY 2.0 (credits in LICENSE.txt)",
    ),
    "imagenette": RemoteDataset(
        url="https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz",
        sha256="88daccb09b6fce93f45e6c09ddeb269cce705549e6bff322092a2a5a11489863",
        size=98_948_031,
        about="fast.ai's Imagenette, 160 px: 10 ImageNet classes in train/ and val/; ImageNet's terms apply",
    ),
}


def _fetch(name: str, entry: RemoteDataset, base: Path) -> Path:
    """Return the archive in ``base``: a copy put there by hand, or downloaded, once its SHA-256 matches."""
    archive = base / PurePosixPath(entry.url).name
    try:
        return Path(keras.utils.get_file(archive.name, entry.url, file_hash=entry.sha256, cache_dir=base,
                                         cache_subdir=""))
    except ValueError:  # get_file: "Incomplete or corrupted file detected"
        size = archive.stat().st_size if archive.is_file() else 0
        archive.unlink(missing_ok=True)
        raise DownloadError(f"{name!r}: '{archive.name}' ({size:,} bytes) does not have the pinned SHA-256 "
                            f"{entry.sha256} ({entry.size:,} bytes): it is incomplete, damaged or was changed at "
                            "its source. Nothing was extracted; try again") from None
    except Exception as error:  # noqa: BLE001 - get_file raises a bare Exception on network errors
        raise DownloadError(f"could not download {name!r} from {entry.url} ({error}). Check the internet "
                            "connection (or proxy); or download that file on another machine, copy it to "
                            f"{archive} and call download({name!r}) again") from None


def _safe_members(names: list[str], archive: Path) -> None:
    for member in names:
        parts = PurePosixPath(member.replace("\\", "/")).parts
        if member.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise DownloadError(f"archive '{archive.name}' holds an unsafe path {member!r} (absolute, or "
                                "with '..'); refusing to extract it")


def _extract(archive: Path, destination: Path) -> None:
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zipped:
                _safe_members(zipped.namelist(), archive)
                zipped.extractall(destination)
            return
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            _safe_members([m.name for m in members], archive)
            odd = [m.name for m in members if not (m.isfile() or m.isdir())]
            if odd:
                raise DownloadError(f"archive '{archive.name}' holds links or special files {odd[:3]}; "
                                    "refusing to extract it")
            tar.extractall(destination, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as error:
        if isinstance(error, OSError) and error.errno is not None:  # disk full, permissions
            raise DownloadError(f"could not extract '{archive.name}' into '{destination.parent}' ({error}); "
                                "nothing was kept") from None
        reason = " ".join(str(error).split())  # tarfile's message spans several lines
        raise DownloadError(f"archive '{archive.name}' is broken ({reason}); nothing was kept. "
                            "Delete any copy of it and download it again") from None


def find_image_root(folder: Path) -> Path:
    """Return the shallowest folder that holds ``train/`` or class sub-folders with images.

    Args:
        folder: Where an archive was extracted.

    Returns:
        The folder to pass to :func:`tlhelpers.data.load_image_folder`.

    Raises:
        DownloadError: If no folder has that layout.
    """

    def holds_classes(candidate: Path) -> bool:
        subs = [p for p in candidate.iterdir() if p.is_dir()]
        with_images = [s for s in subs if any(f.suffix.lower() in IMAGE_SUFFIXES for f in s.iterdir())]
        return len(with_images) >= 2

    candidates = sorted((p for p in [folder, *folder.rglob("*")] if p.is_dir()), key=lambda p: (len(p.parts), p))
    for candidate in candidates:
        if ((candidate / "train").is_dir() and holds_classes(candidate / "train")) or holds_classes(candidate):
            return candidate
    raise DownloadError(f"no folder in '{folder}' holds class sub-folders with images; the archive's "
                        "layout has changed: please report it")


def _already_extracted(entry: RemoteDataset, target: Path, marker: Path) -> Path | None:
    """The dataset root when ``target`` holds this exact archive, extracted completely; else ``None``."""
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("sha256") != entry.sha256 or "root" not in record:
        return None
    root = target / str(record["root"])
    return root if root.is_dir() else None


def download(name: str, data_dir: str | Path | None = None, *,
             datasets: dict[str, RemoteDataset] | None = None) -> Path:
    """Download, verify and extract a public dataset once; return its class-folder root.

    A copy of the archive that you put in ``data_dir`` yourself (for a room without
    internet) is used instead of downloading, after the same checksum test.

    Args:
        name: A key of :data:`DATASETS`, e.g. ``"flowers"``.
        data_dir: Where archives and datasets go; default ``data/downloads/`` in a checkout of this
            repository, else ``~/.cache/tlhelpers/downloads`` (:func:`tlhelpers.runtime.default_dir`).
        datasets: The registry to use instead of :data:`DATASETS` (for tests).

    Returns:
        The folder to pass to :func:`tlhelpers.data.load_image_folder`.

    Raises:
        ValueError: If ``name`` is not in the registry.
        DownloadError: On a network error, a checksum mismatch, or a broken or unsafe archive.
    """
    registry = DATASETS if datasets is None else datasets
    if name not in registry:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(registry))}")
    entry = registry[name]
    base = Path(data_dir).expanduser() if data_dir is not None else default_dir("downloads", in_checkout="data")
    target, marker = base / name, base / f".{name}.json"
    done = _already_extracted(entry, target, marker)
    if done is not None:
        return done
    base.mkdir(parents=True, exist_ok=True)
    archive = _fetch(name, entry, base)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=base))
    try:
        _extract(archive, work / "extracted")
        root = find_image_root(work / "extracted").relative_to(work / "extracted")
        marker.unlink(missing_ok=True)
        if target.exists():
            target.rename(work / "previous")
        (work / "extracted").rename(target)
        marker.write_text(json.dumps({"url": entry.url, "sha256": entry.sha256, "root": root.as_posix()}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target / root
