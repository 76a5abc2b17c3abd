"""Named records of the harness's components, declared where each component is defined.

The pattern is torchvision's ``register_model`` / ``list_models`` / ``get_model``
(``torchvision/models/_api.py``): a module defines a component and registers one record for it; the
rest of the harness (the trial, the checks, ``main.py --list``, the figures, the shell scripts) reads
the record and never lists the components itself. Three registries use it:

* front-ends: :mod:`models.registry` (``register_frontend``);
* corpora: :mod:`corpora.registry` (``register_corpus``);
* experiments: :mod:`search_spaces` (``register_experiment``).

Adding a component is one module plus its import in its package's ``__init__`` (docs/extending.md).
"""
from __future__ import annotations

from typing import Generic, Iterator, TypeVar

R = TypeVar("R")


class UnknownComponent(KeyError, ValueError):
    """A name no record has (a ``KeyError`` for lookups, a ``ValueError`` for config checks)."""

    def __str__(self) -> str:  # the message as written, not KeyError's quoted repr
        return str(self.args[0])


class Registry(Generic[R]):
    """An ordered ``name -> record`` map that refuses a name twice and names the known ones on a miss.

    ``kind`` is what the records are ("front-end", "dataset", ...), for the messages; ``where`` says
    how to add one (appended to the message for an unknown name).
    """

    def __init__(self, kind: str, where: str):
        self.kind, self.where = kind, where
        self._records: dict[str, R] = {}

    def register(self, name: str, record: R) -> R:
        """Add ``record`` under ``name``; a second record of the same name raises ``ValueError``."""
        if name in self._records:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._records[name] = record
        return record

    def get(self, name: str) -> R:
        """The record of ``name``; ``UnknownComponent`` naming the known ones (and how to add one) otherwise."""
        try:
            return self._records[name]
        except KeyError:
            raise UnknownComponent(f"unknown {self.kind} {name!r}; known: {', '.join(self._records)} "
                           f"({self.where})") from None

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        return tuple(self._records)

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def items(self):
        return self._records.items()

    def values(self):
        return self._records.values()
