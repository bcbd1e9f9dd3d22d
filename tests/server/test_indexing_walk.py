"""`indexing.walk` (level by level, for speed) yields what the plain definition does: the
values at a dotted path, lists flattened wherever they are, None left out, in document
order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from carebridge.server.indexing import walk

KEYS = ("a", "b", "c")


def spec(node: Any, path: str) -> Iterator[Any]:
    parts = path.split(".")
    stack: list[tuple[Any, int]] = [(node, 0)]
    while stack:
        value, i = stack.pop()
        if isinstance(value, list):
            stack.extend((v, i) for v in reversed(value))
            continue
        if i == len(parts):
            if value is not None:
                yield value
            continue
        if isinstance(value, dict):
            nxt = value.get(parts[i])
            if nxt is not None:
                stack.append((nxt, i + 1))


json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["x", "y", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=25,
)
paths = st.lists(st.sampled_from(KEYS), min_size=1, max_size=3).map(".".join)


@settings(max_examples=400, deadline=None)
@given(json, paths)
def test_walk_is_the_plain_definition(node: Any, path: str) -> None:
    assert list(walk(node, path)) == list(spec(node, path))
