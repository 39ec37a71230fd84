"""A persistent hash trie: an immutable map whose copy-with-one-change costs O(log n).

Core layer; pure. The participant state keeps every AE for good (they are never pruned),
and copying a tuple of them per AE fact made a long history quadratic (20,000 AEs: 30x
slower per fact). A 32-way trie over the key's hash shares all but the path it changes
with the map it came from: at most ~4 nodes of 32 slots are copied at 50,000 keys.

A node is a 32-tuple of slots; a slot is None, a `_Leaf`, a node one level down, or a
`_Bucket` of keys whose whole hashes are equal. Keys are read through `hash` and `==`
only, so iteration order depends on the process's hash seed: callers that need an order
(the JSON form) sort what they read.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Final, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_BITS: Final = 5
_MASK: Final = (1 << _BITS) - 1
_HASH_BITS: Final = (1 << 64) - 1


class _Leaf(Generic[K, V]):
    __slots__ = ("code", "key", "value")

    def __init__(self, code: int, key: K, value: V) -> None:
        self.code, self.key, self.value = code, key, value


class _Bucket(Generic[K, V]):
    """Keys whose whole hashes are equal (after 64 bits the trie cannot tell them apart)."""

    __slots__ = ("code", "items")

    def __init__(self, code: int, items: tuple[tuple[K, V], ...]) -> None:
        self.code, self.items = code, items


Node = tuple[object, ...]
EMPTY: Final[Node] = (None,) * (1 << _BITS)


def code_of(key: Hashable) -> int:
    """The unsigned 64-bit hash the trie is indexed by."""
    return hash(key) & _HASH_BITS


def get(node: Node, key: K, code: int) -> V | None:
    """The value of `key` (None when absent)."""
    shift = 0
    while True:
        slot = node[(code >> shift) & _MASK]
        if slot is None:
            return None
        if type(slot) is tuple:
            node, shift = slot, shift + _BITS
            continue
        if type(slot) is _Leaf:
            return slot.value if slot.key == key else None
        bucket: _Bucket[K, V] = slot  # type: ignore[assignment]
        return next((v for k, v in bucket.items if k == key), None)


def put(node: Node, key: K, value: V, code: int, shift: int = 0) -> Node:
    """A copy of `node` where `key` maps to `value` (path copying only)."""
    index = (code >> shift) & _MASK
    slot = node[index]
    new: object
    if slot is None:
        new = _Leaf(code, key, value)
    elif type(slot) is tuple:
        new = put(slot, key, value, code, shift + _BITS)
    elif type(slot) is _Leaf:
        if slot.key == key:
            new = _Leaf(code, key, value)
        elif slot.code == code:
            new = _Bucket(code, ((slot.key, slot.value), (key, value)))
        else:
            down = put(EMPTY, slot.key, slot.value, slot.code, shift + _BITS)
            new = put(down, key, value, code, shift + _BITS)
    else:
        bucket: _Bucket[K, V] = slot  # type: ignore[assignment]
        if bucket.code == code:
            kept = tuple((k, v) for k, v in bucket.items if k != key)
            new = _Bucket(code, (*kept, (key, value)))
        else:
            down = _placed(bucket, shift + _BITS)
            new = put(down, key, value, code, shift + _BITS)
    return (*node[:index], new, *node[index + 1 :])


def _placed(bucket: _Bucket[K, V], shift: int) -> Node:
    """A node one level down holding `bucket` alone."""
    index = (bucket.code >> shift) & _MASK
    return (*EMPTY[:index], bucket, *EMPTY[index + 1 :])


def drop(node: Node, key: Hashable, code: int, shift: int = 0) -> Node:
    """A copy of `node` without `key` (`node` itself when the key is absent)."""
    index = (code >> shift) & _MASK
    slot = node[index]
    new: object
    if slot is None:
        return node
    if type(slot) is tuple:
        new = drop(slot, key, code, shift + _BITS)
        if new is slot:
            return node
        if new == EMPTY:
            new = None
    elif type(slot) is _Leaf:
        if slot.key != key:
            return node
        new = None
    else:
        bucket: _Bucket[Hashable, object] = slot  # type: ignore[assignment]
        kept = tuple((k, v) for k, v in bucket.items if k != key)
        if len(kept) == len(bucket.items):
            return node
        new = _Bucket(bucket.code, kept) if kept else None
    return (*node[:index], new, *node[index + 1 :])


def items(node: Node) -> Iterator[tuple[K, V]]:
    """Every (key, value), in the trie's (hash) order."""
    for slot in node:
        if slot is None:
            continue
        if type(slot) is tuple:
            yield from items(slot)
        elif type(slot) is _Leaf:
            yield slot.key, slot.value
        else:
            bucket: _Bucket[K, V] = slot  # type: ignore[assignment]
            yield from bucket.items


def equal(a: object, b: object) -> bool:
    """Tell whether two tries (or slots) hold equal items; shared subtrees cost nothing.

    Two tries made from each other differ on one path only, so comparing a state with the
    one it came from descends that path. Where the shapes differ (a removal leaves a
    subtree that a fresh trie would hold as a leaf) the items are compared.
    """
    if a is b:
        return True
    if type(a) is tuple and type(b) is tuple:
        return all(equal(x, y) for x, y in zip(a, b, strict=True))
    return dict(_slot_items(a)) == dict(_slot_items(b))


def _slot_items(slot: object) -> Iterator[tuple[object, object]]:
    if slot is None:
        return iter(())
    if type(slot) is tuple:
        return items(slot)
    if type(slot) is _Leaf:
        return iter(((slot.key, slot.value),))
    bucket: _Bucket[object, object] = slot  # type: ignore[assignment]
    return iter(bucket.items)
