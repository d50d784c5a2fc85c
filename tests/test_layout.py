"""The layout holds: no import circle (typing-only ones included), rooms import only downhill.

    frame (server/*.py) <- rooms (server/live, server/styles, server/jobs) <- library (stylefusion)

A room may import its own modules, the frame's base modules and the library; never another
room, app.py or __main__ (the composition root, which wires the rooms together).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("server", "stylefusion")
ROOMS = ("live", "styles", "jobs")
COMPOSITION_ROOT = {"server.app", "server.__main__"}
MAX_LINES = 400

Graph = dict[str, set[str]]


def module_name(path: Path) -> str:
    """server/live/peers.py -> server.live.peers; server/live/__init__.py -> server.live."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    return {
        module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    }


def imports_of(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """Project modules `name` imports anywhere in its file: top level, functions, TYPE_CHECKING."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from pkg import module` names a module, else a name
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return {target for target in found if target in known and target != name}


def import_graph() -> Graph:
    """Module -> the project modules it imports."""
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def room_of(module: str) -> str | None:
    """'live' for server.live.peers; None for the frame and the library."""
    parts = module.split(".")
    if parts[0] == "server" and len(parts) > 1 and parts[1] in ROOMS:
        return parts[1]
    return None


def layering_breaks(graph: Graph) -> list[str]:
    """Every import that runs uphill or sideways, as 'importer -> imported'."""
    bad = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            if not uphill_or_sideways(source, target):
                continue
            bad.append(f"{source} -> {target}")
    return bad


def uphill_or_sideways(source: str, target: str) -> bool:
    """Whether source importing target breaks frame <- rooms <- library."""
    if source.startswith("stylefusion"):
        return target.startswith("server")  # the library knows nothing of HTTP
    if source in COMPOSITION_ROOT:
        return False
    if target in COMPOSITION_ROOT:
        return True
    source_room, target_room = room_of(source), room_of(target)
    if source_room is None:  # a frame base module: the library and other base modules only
        return target_room is not None
    return target_room is not None and target_room != source_room


def test_the_project_has_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_rooms_import_only_downhill() -> None:
    assert layering_breaks(import_graph()) == []


def test_every_room_exists_and_the_frame_holds_the_wiring() -> None:
    graph = import_graph()
    for room in ROOMS:
        assert f"server.{room}" in graph, f"server/{room}/ is missing"
        assert f"server.{room}" in graph["server.app"]  # app.py sets each room up


def test_no_module_is_over_the_line_limit() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in project_modules().values()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: Graph, expected: list[list[str]]) -> None:
    assert cycles(graph) == expected


def test_the_layering_check_catches_a_room_importing_a_room() -> None:
    graph = {"server.live.peers": {"server.styles.registry", "server.keys"}}
    assert layering_breaks(graph) == ["server.live.peers -> server.styles.registry"]
    assert layering_breaks({"server.keys": {"server.live.keys"}}) == [
        "server.keys -> server.live.keys"
    ]
    assert layering_breaks({"stylefusion.trainer": {"server.config"}}) == [
        "stylefusion.trainer -> server.config"
    ]


def test_imports_inside_type_checking_blocks_count(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .peers import Peer\n"
    )
    assert imports_of("server.live.mod", source, {"server.live.peers"}) == {"server.live.peers"}
