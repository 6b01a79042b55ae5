"""Download a public image dataset once, pinned by SHA-256, and find its class folders.

:func:`download` returns the folder to pass to :func:`tlhelpers.data.load_image_folder`.
An archive is checked before anything is extracted, extracted into a temporary folder beside
the target and renamed into place only when complete, so a failed download, a checksum
mismatch or a broken archive leaves no half-extracted folder behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from tlhelpers.images import IMAGE_SUFFIXES

TIMEOUT_S = 60


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


def default_data_dir() -> Path:
    """``data/downloads/`` in a checkout of this repository, else ``~/.tlhelpers/datasets``."""
    repo = Path(__file__).resolve().parents[1]
    if (repo / "data").is_dir() and (repo / "pyproject.toml").is_file():
        return repo / "data" / "downloads"
    return Path.home() / ".tlhelpers" / "datasets"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _fetch(name: str, entry: RemoteDataset, destination: Path, offline_copy: Path) -> None:
    request = urllib.request.Request(entry.url, headers={"User-Agent": "tlhelpers"})
    try:
        with (urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(destination, "wb") as file,
              tqdm(total=entry.size, desc=f"Downloading {name}", unit="B", unit_scale=True, leave=False,
                   disable=entry.size < 10_000_000) as bar):
            while chunk := response.read(1 << 20):
                bar.update(file.write(chunk))
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(f"could not download {name!r} from {entry.url} ({error}). Check the internet "
                            "connection (or proxy); or download that file on another machine, copy it to "
                            f"{offline_copy} and call download({name!r}) again") from None


def _verify(name: str, entry: RemoteDataset, archive: Path) -> None:
    size, sha256 = archive.stat().st_size, _sha256(archive)
    if sha256 != entry.sha256:
        raise DownloadError(f"{name!r}: '{archive.name}' has {size:,} bytes and SHA-256 {sha256}, expected "
                            f"{entry.size:,} bytes and {entry.sha256}: the file is incomplete, damaged or was "
                            "changed at its source. Nothing was extracted; delete any copy and try again")


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
        data_dir: Where datasets go; default :func:`default_data_dir`.
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
    base = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    target, marker = base / name, base / f".{name}.json"
    done = _already_extracted(entry, target, marker)
    if done is not None:
        return done
    base.mkdir(parents=True, exist_ok=True)
    offline_copy = base / PurePosixPath(entry.url).name
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=base))
    try:
        archive = offline_copy if offline_copy.is_file() else work / offline_copy.name
        if archive != offline_copy:
            _fetch(name, entry, archive, offline_copy)
        _verify(name, entry, archive)
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
