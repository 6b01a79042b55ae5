"""Find files with identical content in a loaded image folder (used by ``data``, taught in notebook 01).

The same photo saved twice is common in collected data sets (Oxford Pets has copies across its
splits). Where the copies land decides the harm:

* in **train and validation/test**: the model is scored on images it trained on, so the
  validation or test accuracy is inflated (a *leak*);
* in **two classes**: the same image carries two labels;
* twice in **one class and split**: the image weighs double in training.

Only files with the same size are read and hashed, so a folder without copies costs one
``stat`` per file. Files are only read, never written, moved or deleted.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DuplicateGroup", "describe", "find_duplicates", "warning_message"]


@dataclass(frozen=True)
class DuplicateGroup:
    """Files whose bytes are identical.

    Attributes:
        files: ``(split, path, class_name)`` for each copy, in split order (train, val, test), then by path.
    """

    files: tuple[tuple[str, Path, str], ...]

    @property
    def splits(self) -> list[str]:
        """The splits the copies are in, in order."""
        return list(dict.fromkeys(split for split, _, _ in self.files))

    @property
    def classes(self) -> list[str]:
        """The classes the copies are labelled as."""
        return list(dict.fromkeys(name for _, _, name in self.files))

    @property
    def leaks(self) -> bool:
        """Copies sit in more than one split: validation or test accuracy is inflated."""
        return len(self.splits) > 1

    @property
    def kind(self) -> str:
        """A short description: where the copies are and what that does."""
        parts = []
        if self.leaks:
            parts.append(f"across splits {'/'.join(self.splits)}: a leak, inflates the {self.splits[-1]} accuracy")
        if len(self.classes) > 1:
            parts.append(f"across classes {'/'.join(self.classes)}: one image, several labels")
        return "; ".join(parts) or f"within class {self.classes[0]} ({self.splits[0]}): counted twice"


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def find_duplicates(files: dict[str, list[tuple[Path, int]]], class_names: list[str]) -> list[DuplicateGroup]:
    """Group the files of every split whose content is byte-for-byte identical.

    Args:
        files: ``{split: [(path, label), ...]}``, as in ``ImageFolder.files``.
        class_names: Label ``i`` means ``class_names[i]``.

    Returns:
        One :class:`DuplicateGroup` per set of two or more identical files: groups that leak
        across splits first, then those across classes, then the rest; each by first path.
    """
    by_size: dict[int, list[tuple[str, Path, str]]] = defaultdict(list)
    for split, pairs in files.items():
        for path, label in pairs:
            by_size[path.stat().st_size].append((split, path, class_names[label]))
    by_content: dict[str, list[tuple[str, Path, str]]] = defaultdict(list)
    for same_size in by_size.values():
        if len(same_size) > 1:
            for entry in same_size:
                by_content[_digest(entry[1])].append(entry)
    order = {split: i for i, split in enumerate(files)}
    groups = [DuplicateGroup(tuple(sorted(entries, key=lambda e: (order[e[0]], str(e[1])))))
              for entries in by_content.values() if len(entries) > 1]
    return sorted(groups, key=lambda g: (not g.leaks, len(g.classes) == 1, str(g.files[0][1])))


def _shown(path: Path, root: Path | None) -> str:
    return str(path.relative_to(root)) if root is not None and root in path.parents else str(path)


def describe(group: DuplicateGroup, root: Path | None = None, shown: int = 3) -> str:
    """One line naming the first ``shown`` copies (relative to ``root``), the split of each, and what they do.

    The split is shown because it need not match the folder: without a ``test/`` folder, the
    test split is held out of ``train/``; without split folders, it is drawn from each class.
    """
    names = " = ".join(f"'{_shown(path, root)}' [{split}]" for split, path, _ in group.files[:shown])
    more = f" and {len(group.files) - shown} more copies" if len(group.files) > shown else ""
    return f"{names}{more} ({group.kind})"


def warning_message(groups: list[DuplicateGroup], root: Path | None, shown: int = 3) -> str:
    """The one warning :func:`tlhelpers.data.load_image_folder` gives for ``groups`` (not empty)."""
    leaks = sum(g.leaks for g in groups)
    copies = sum(len(g.files) for g in groups)
    head = (f"{len(groups)} group(s) of identical files ({copies} files) in '{root}'"
            + (f"; {leaks} group(s) span train/validation/test, so the model is scored on images it trained on "
               "and the validation/test accuracy is inflated" if leaks else ""))
    listed = "; ".join(describe(g, root) for g in groups[:shown])
    more = f"; and {len(groups) - shown} more" if len(groups) > shown else ""
    return (f"{head}. First: {listed}{more}. See .duplicates for every group; to fix it, keep one copy of each "
            "in your folder (nothing was changed).")
