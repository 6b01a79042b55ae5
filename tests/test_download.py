"""tlhelpers.download: pinned archives, served by a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import re
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_image
from tlhelpers.data import load_image_folder
from tlhelpers.download import DATASETS, DownloadError, RemoteDataset, download
from tlhelpers.runtime import default_dir


class _Server(http.server.ThreadingHTTPServer):
    requests: list[str]


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.server.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """Serve ``tmp_path / "www"`` on 127.0.0.1; yield (base URL, folder, paths requested)."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = _Server(("127.0.0.1", 0), functools.partial(_Handler, directory=str(www)))
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www, httpd.requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _tgz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _image_bytes(tmp_path: Path, colour: tuple[int, int, int], member: str = "image.png") -> bytes:
    """A small image for archive ``member``: members with other names never have identical bytes."""
    return write_image(tmp_path / "scratch" / member, colour).read_bytes()


def _flowers_like(tmp_path: Path, prefix: str = "mini_flowers/") -> bytes:
    """The layout of flower_photos.tgz: one top folder, a licence, one folder per class."""
    members = {f"{prefix}LICENSE.txt": b"CC BY 2.0"}
    for name, colour in {"daisy": (250, 250, 250), "roses": (200, 0, 0)}.items():
        for i in range(3):
            members[f"{prefix}{name}/{i}.png"] = _image_bytes(tmp_path, colour, f"{prefix}{name}/{i}.png")
    return _tgz(members)


def _publish(www: Path, base: str, name: str, content: bytes, sha256: str | None = None) -> dict[str, RemoteDataset]:
    (www / f"{name}.tgz").write_bytes(content)
    entry = RemoteDataset(url=f"{base}/{name}.tgz", sha256=sha256 or hashlib.sha256(content).hexdigest(),
                          size=len(content), about="test archive")
    return {name: entry}


def _leftovers(data_dir: Path) -> list[str]:
    """Anything in data_dir besides finished datasets and their records."""
    return sorted(p.name for p in data_dir.iterdir() if p.name.startswith(".") and not p.name.endswith(".json"))


def test_download_extracts_finds_the_classes_and_reuses_them(server, tmp_path: Path) -> None:
    base, www, requests = server
    registry = _publish(www, base, "mini", _flowers_like(tmp_path))
    data_dir = tmp_path / "downloads"
    root = download("mini", data_dir, datasets=registry)
    assert root == data_dir / "mini" / "mini_flowers"
    assert sorted(p.name for p in root.iterdir()) == ["LICENSE.txt", "daisy", "roses"]
    assert requests == ["/mini.tgz"] and _leftovers(data_dir) == []
    assert download("mini", data_dir, datasets=registry) == root
    assert requests == ["/mini.tgz"], "already extracted and verified: no second download"
    data = load_image_folder(root, image_size=(32, 32))
    assert data.class_names == ["daisy", "roses"]


def test_a_new_checksum_replaces_the_old_extraction(server, tmp_path: Path) -> None:
    base, www, requests = server
    data_dir = tmp_path / "downloads"
    download("mini", data_dir, datasets=_publish(www, base, "mini", _flowers_like(tmp_path)))
    newer = _publish(www, base, "mini", _flowers_like(tmp_path, prefix="renamed/"))
    assert download("mini", data_dir, datasets=newer) == data_dir / "mini" / "renamed"
    assert not (data_dir / "mini" / "mini_flowers").exists() and len(requests) == 2


def test_split_archive_root_is_the_folder_holding_train(server, tmp_path: Path) -> None:
    base, www, _ = server
    members = {f"set/{split}/{name}/{i}.png": _image_bytes(tmp_path, (i, 0, 0), f"set/{split}/{name}/{i}.png")
               for split in ("train", "val") for name in ("a", "b") for i in range(2)}
    members["set/noisy_labels.csv"] = b"path,label\n"
    root = download("split", tmp_path / "d", datasets=_publish(www, base, "split", _tgz(members)))
    assert root == tmp_path / "d" / "split" / "set"
    assert load_image_folder(root, image_size=(32, 32)).counts["val"] == {"a": 2, "b": 2}


def test_checksum_mismatch_extracts_nothing(server, tmp_path: Path) -> None:
    base, www, _ = server
    registry = _publish(www, base, "mini", _flowers_like(tmp_path), sha256="0" * 64)
    data_dir = tmp_path / "downloads"
    with pytest.raises(DownloadError, match=f"does not have the pinned SHA-256 {'0' * 64}.*Nothing was extracted"):
        download("mini", data_dir, datasets=registry)
    assert not (data_dir / "mini").exists() and _leftovers(data_dir) == []


@pytest.mark.parametrize("content", [b"this is not an archive at all", None], ids=["not-an-archive", "cut-off-gzip"])
def test_broken_archive_leaves_no_half_extracted_folder(server, tmp_path: Path, content: bytes | None) -> None:
    base, www, _ = server
    content = content or _flowers_like(tmp_path)[:-200]
    data_dir = tmp_path / "downloads"
    with pytest.raises(DownloadError, match="is broken.*nothing was kept"):
        download("mini", data_dir, datasets=_publish(www, base, "mini", content))  # checksum of the broken bytes
    assert not (data_dir / "mini").exists() and _leftovers(data_dir) == []


@pytest.mark.parametrize("evil", ["../escaped.txt", "/tmp/absolute.txt", "mini/../../escaped.txt"])
def test_unsafe_member_is_refused(server, tmp_path: Path, evil: str) -> None:
    base, www, _ = server
    archive = _tgz({"mini/a/0.png": _image_bytes(tmp_path, (1, 1, 1)), evil: b"gotcha"})
    data_dir = tmp_path / "downloads"
    with pytest.raises(DownloadError, match=f"unsafe path {re.escape(repr(evil))}"):
        download("mini", data_dir, datasets=_publish(www, base, "mini", archive))
    assert not (tmp_path / "escaped.txt").exists() and not (data_dir / "mini").exists()
    assert _leftovers(data_dir) == []


def test_network_error_says_how_to_work_offline(server, tmp_path: Path) -> None:
    base, _, _ = server
    registry = {"gone": RemoteDataset(url=f"{base}/missing.tgz", sha256="0" * 64, size=1, about="")}
    with pytest.raises(DownloadError, match="could not download 'gone'.*copy it to .*missing.tgz") as error:
        download("gone", tmp_path / "d", datasets=registry)
    assert "404" in str(error.value) and _leftovers(tmp_path / "d") == []


def test_an_archive_copied_in_by_hand_is_used_offline(tmp_path: Path) -> None:
    content = _flowers_like(tmp_path)
    data_dir = tmp_path / "downloads"
    data_dir.mkdir()
    (data_dir / "mini.tgz").write_bytes(content)  # e.g. from a USB stick
    registry = {"mini": RemoteDataset(url="http://127.0.0.1:9/mini.tgz", sha256=hashlib.sha256(content).hexdigest(),
                                      size=len(content), about="")}  # port 9: nothing answers
    assert download("mini", data_dir, datasets=registry) == data_dir / "mini" / "mini_flowers"
    assert (data_dir / "mini.tgz").read_bytes() == content, "the user's copy is left as it was"


def test_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'flower'; known: flowers, imagenette"):
        download("flower", tmp_path)


def test_registry_is_pinned_and_the_default_folder_is_in_the_repository() -> None:
    for name, entry in DATASETS.items():
        assert entry.url.startswith("https://"), name
        assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256) and entry.size > 1_000_000, name
    assert DATASETS["flowers"].url.endswith("/example_images/flower_photos.tgz")
    assert default_dir("downloads", in_checkout="data") == ROOT / "data" / "downloads"


def test_a_damaged_record_means_extract_again_from_the_kept_archive(server, tmp_path: Path) -> None:
    base, www, requests = server
    registry = _publish(www, base, "mini", _flowers_like(tmp_path))
    data_dir = tmp_path / "downloads"
    root = download("mini", data_dir, datasets=registry)
    (data_dir / ".mini.json").write_text("{not json")  # e.g. a disk that filled up
    (root / "daisy" / "0.png").unlink()
    assert download("mini", data_dir, datasets=registry) == root and len(requests) == 1
    assert (root / "daisy" / "0.png").is_file(), "extracted again from the archive, whose SHA-256 still matches"
    (data_dir / "mini.tgz").write_bytes(b"damaged")
    (data_dir / ".mini.json").unlink()
    assert download("mini", data_dir, datasets=registry) == root and len(requests) == 2, "downloaded again"
