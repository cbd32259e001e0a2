"""A job's tasks as a directed acyclic graph: dependency indexes, cycles, order.

Every job of a dataset has the same DAG, so it is computed once from the config. Edges point
from a task to the tasks it depends on (``parents``); ``children`` is the reverse, which is
what completing a task walks to release its dependents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from frazil.errors import Problem


@dataclass(frozen=True)
class Dag:
    """Parents and children of every task, by index, and one topological order."""

    names: tuple[str, ...]
    parents: tuple[tuple[int, ...], ...]
    children: tuple[tuple[int, ...], ...]
    order: tuple[int, ...]

    @property
    def roots(self) -> tuple[int, ...]:
        """Tasks with no dependencies: ready as soon as the job exists."""
        return tuple(i for i, p in enumerate(self.parents) if not p)


def _parent_indexes(
    names: Sequence[str], depends: Sequence[Sequence[str | int]]
) -> tuple[list[list[int]], list[Problem]]:
    problems: list[Problem] = []
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in index:
            problems.append(
                Problem(
                    f"tasks[{i}].name",
                    f"duplicate task name {name!r} (also tasks[{index[name]}])",
                )
            )
        else:
            index[name] = i
    parents: list[list[int]] = []
    for i, deps in enumerate(depends):
        mine: list[int] = []
        for k, dep in enumerate(deps):
            where = f"tasks[{i}].depends[{k}]"
            if isinstance(dep, int):
                if not 0 <= dep < len(names):
                    problems.append(
                        Problem(where, f"task index {dep} out of range (0-{len(names) - 1})")
                    )
                    continue
                target = dep
            elif dep in index:
                target = index[dep]
            else:
                known = ", ".join(names)
                problems.append(Problem(where, f"no task named {dep!r} (tasks: {known})"))
                continue
            if target == i:
                problems.append(Problem(where, f"task {names[i]!r} depends on itself"))
                continue
            if target not in mine:
                mine.append(target)
        parents.append(mine)
    return parents, problems


def _find_cycle(parents: Sequence[Sequence[int]]) -> list[int] | None:
    """One cycle as a list of indexes (first == last), or None. Iterative DFS."""
    white, grey, black = 0, 1, 2
    color = [white] * len(parents)
    for start in range(len(parents)):
        if color[start] != white:
            continue
        stack: list[tuple[int, int]] = [(start, 0)]
        path: list[int] = [start]
        color[start] = grey
        while stack:
            node, k = stack[-1]
            if k < len(parents[node]):
                stack[-1] = (node, k + 1)
                nxt = parents[node][k]
                if color[nxt] == grey:
                    return [*path[path.index(nxt) :], nxt]
                if color[nxt] == white:
                    color[nxt] = grey
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                color[node] = black
                stack.pop()
                path.pop()
    return None


def _topological(parents: Sequence[Sequence[int]]) -> list[int]:
    """Kahn's algorithm, stable: among ready tasks, config order wins."""
    remaining = [len(p) for p in parents]
    children: list[list[int]] = [[] for _ in parents]
    for i, ps in enumerate(parents):
        for p in ps:
            children[p].append(i)
    ready = [i for i, n in enumerate(remaining) if n == 0]
    order: list[int] = []
    while ready:
        ready.sort(reverse=True)
        node = ready.pop()
        order.append(node)
        for child in children[node]:
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(child)
    return order


def build_dag(
    names: Sequence[str], depends: Sequence[Sequence[str | int]]
) -> tuple[Dag | None, list[Problem]]:
    """The DAG of tasks ``names`` with dependencies ``depends``, or None and the problems."""
    parents, problems = _parent_indexes(names, depends)
    if problems:
        return None, problems
    cycle = _find_cycle(parents)
    if cycle is not None:
        chain = " -> ".join(names[i] for i in cycle)
        first = cycle[0]
        return None, [
            Problem(
                f"tasks[{first}].depends", f"dependency cycle: {chain} (each depends on the next)"
            )
        ]
    children: list[list[int]] = [[] for _ in names]
    for i, ps in enumerate(parents):
        for p in ps:
            children[p].append(i)
    dag = Dag(
        names=tuple(names),
        parents=tuple(tuple(p) for p in parents),
        children=tuple(tuple(c) for c in children),
        order=tuple(_topological(parents)),
    )
    return dag, []
