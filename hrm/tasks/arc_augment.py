"""ARC augmentations: the 8 dihedral transforms x colour permutations the official models are trained under.

Numbering and naming follow the official ``dataset/common.py`` and ``build_arc_dataset.py``:

* transform ids 0-7: 0 identity, 1-3 ``rot90`` k times, 4 ``fliplr``, 5 ``flipud``, 6 transpose,
  7 anti-transpose (``fliplr(rot90(a))``); the inverse of ``t`` is ``DIHEDRAL_INVERSE[t]``;
* a colour permutation ``perm`` maps colour ``c`` to ``perm[c]`` and keeps colour 0 (black background);
* the builder maps colours first, then transforms: ``dihedral(perm[grid], t)``;
* an augmented task is its own puzzle identifier, named ``{task_id}_t{t}_{perm digits}``; the
  un-augmented task keeps its plain name.

Evaluation undoes an augmentation exactly: ``argsort(perm)[inverse_dihedral(grid, t)]``. Why one value
object (:class:`Augmentation`) instead of loose ``(tid, perm)`` pairs: the runtime, the dataset builder,
the identifiers map and the vote all meet on it, so they cannot disagree about order or naming.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DIHEDRAL_INVERSE",
    "IDENTITY_PERM",
    "Augmentation",
    "IDENTITY",
    "dihedral",
    "inverse_dihedral",
    "random_color_perm",
    "random_augmentations",
    "puzzle_hash",
]

#: inverse of each dihedral transform id (the official ``DIHEDRAL_INVERSE``)
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)
IDENTITY_PERM = tuple(range(10))
#: official retries: up to ``5 * n`` random draws to find ``n`` distinct augmentations
RETRIES_FACTOR = 5
_NAME = re.compile(r"^(?P<base>.+)_t(?P<tid>[0-7])_(?P<perm>[0-9]{10})$")


def dihedral(grid: Any, tid: int) -> np.ndarray:
    """The 8 dihedral transforms, numbered as the official ``dihedral_transform``."""
    a = np.asarray(grid)
    if tid == 0:
        return a
    if tid in (1, 2, 3):
        return np.rot90(a, k=tid)
    if tid == 4:
        return np.fliplr(a)
    if tid == 5:
        return np.flipud(a)
    if tid == 6:
        return a.T
    if tid == 7:
        return np.fliplr(np.rot90(a, k=1))
    raise ValueError(f"dihedral transform id must be 0..7, got {tid}")


def inverse_dihedral(grid: Any, tid: int) -> np.ndarray:
    """Undo :func:`dihedral` ``tid``."""
    if not 0 <= int(tid) <= 7:
        raise ValueError(f"dihedral transform id must be 0..7, got {tid}")
    return dihedral(grid, DIHEDRAL_INVERSE[int(tid)])


def _check_perm(perm: Any) -> tuple[int, ...]:
    p = tuple(int(x) for x in np.asarray(perm).reshape(-1))
    if sorted(p) != list(range(10)):
        raise ValueError(f"a colour permutation is a permutation of 0..9, got {list(p)}")
    if p[0] != 0:
        raise ValueError(f"a colour permutation keeps colour 0 (black background), got {list(p)}")
    return p


@dataclass(frozen=True)
class Augmentation:
    """One dihedral transform plus one colour permutation (``perm[c]`` is the new colour of ``c``)."""

    trans_id: int = 0
    perm: tuple[int, ...] = IDENTITY_PERM

    def __post_init__(self) -> None:
        if not 0 <= int(self.trans_id) <= 7:
            raise ValueError(f"dihedral transform id must be 0..7, got {self.trans_id}")
        object.__setattr__(self, "trans_id", int(self.trans_id))
        object.__setattr__(self, "perm", _check_perm(self.perm))

    @property
    def is_identity(self) -> bool:
        return self.trans_id == 0 and self.perm == IDENTITY_PERM

    @property
    def suffix(self) -> str:
        """``t{trans_id}_{perm digits}`` (official ``aug_repr``)."""
        return f"t{self.trans_id}_{''.join(map(str, self.perm))}"

    def name(self, task_id: str) -> str:
        """The puzzle-identifier name of ``task_id`` under this augmentation (plain id for the identity)."""
        return task_id if self.is_identity else f"{task_id}_{self.suffix}"

    @classmethod
    def parse(cls, name: str) -> tuple[str, "Augmentation"]:
        """``(base task id, augmentation)`` of a puzzle name; a name without a suffix is un-augmented."""
        m = _NAME.match(name)
        if not m:
            return name, IDENTITY
        return m["base"], cls(int(m["tid"]), tuple(int(ch) for ch in m["perm"]))

    def apply(self, grid: Any) -> np.ndarray:
        """Augment a grid: colours through ``perm``, then the transform (the builder's order)."""
        g = np.asarray(grid, dtype=np.int64)
        return np.ascontiguousarray(dihedral(np.asarray(self.perm, np.int64)[g], self.trans_id))

    def invert(self, grid: Any) -> np.ndarray:
        """Map a grid (a prediction) made under this augmentation back to the original frame."""
        inverse = np.argsort(np.asarray(self.perm, np.int64))
        return np.ascontiguousarray(inverse[inverse_dihedral(np.asarray(grid, dtype=np.int64), self.trans_id)])


IDENTITY = Augmentation()


def random_color_perm(rng: np.random.Generator) -> tuple[int, ...]:
    """A random colour map with colour 0 fixed, as the official builder draws it."""
    return (0, *(int(x) for x in rng.permutation(np.arange(1, 10))))


def puzzle_hash(grids: Any) -> str:
    """Order-free hash of a task's (input, output) pairs: two augmentations that give the same
    task are the same puzzle (the official builder keeps one). ``grids``: iterable of pairs."""
    def one(g: np.ndarray) -> str:
        a = np.ascontiguousarray(g, dtype=np.uint8)
        return hashlib.sha256(bytes(a.shape) + a.tobytes()).hexdigest()

    pairs = sorted(f"{one(i)}|{one(o)}" for i, o in grids)
    return hashlib.sha256("|".join(pairs).encode()).hexdigest()


def random_augmentations(pairs: Any, n: int, rng: np.random.Generator) -> list[Augmentation]:
    """Up to ``n`` augmentations of a task whose augmented pairs all differ from each other and from
    the original (the official builder's rule; it draws at most ``5 n`` times, so symmetric tasks get
    fewer). ``pairs``: the task's (input, output) grids, outputs possibly None."""
    pairs = [(np.asarray(i), np.asarray(o if o is not None else i)) for i, o in pairs]
    seen = {puzzle_hash(pairs)}
    out: list[Augmentation] = []
    for _ in range(RETRIES_FACTOR * n):
        if len(out) >= n:
            break
        aug = Augmentation(int(rng.integers(0, 8)), random_color_perm(rng))
        h = puzzle_hash((aug.apply(i), aug.apply(o)) for i, o in pairs)
        if h not in seen:
            seen.add(h)
            out.append(aug)
    return out
