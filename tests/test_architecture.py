"""The package's layers, read from its real import graph (grimp).

Each layer imports only the layers below it; no two modules import each other, directly or
round a circle; the pfs client side never reaches the pachd stand-in; the notebook side and the
server side stay apart. docs/architecture.md draws the same picture.
"""

from __future__ import annotations

import copy

import grimp
import pytest

PACKAGE = "jupyterlab_pachls"

# Top to bottom. Modules in one tuple are siblings that must not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("app",),
    ("handlers",),
    ("magics",),
    ("client",),
    ("labeling",),
    ("mount",),
    ("listing", "identity", "demo"),
    ("pfs",),
    ("config", "atomic_write", "_version"),
)

SERVER_SIDE = ("app", "handlers", "labeling", "mount", "listing", "pfs")
NOTEBOOK_SIDE = ("client", "magics")


def _layers() -> tuple[grimp.Layer, ...]:
    return tuple(grimp.Layer(*names, independent=True) for names in LAYERS)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, cache_dir=None)


def _cycles(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """Imports that close a circle among the children of any package of the tree."""
    found = []
    packages = [PACKAGE, *(m for m in graph.find_descendants(PACKAGE) if graph.find_children(m))]
    for package in sorted(packages):
        found += sorted(graph.nominate_cycle_breakers(package))
    return found


def _back_arrows(graph: grimp.ImportGraph) -> list[str]:
    illegal = graph.find_illegal_dependencies_for_layers(layers=_layers(), containers={PACKAGE})
    return sorted(f"{d.importer} -> {d.imported}: " + "; ".join(
        " -> ".join(("|".join(sorted(r.heads)), *r.middle, "|".join(sorted(r.tails)))) for r in d.routes)
        for d in illegal)


def _chains(graph: grimp.ImportGraph, importers, imported) -> list[tuple[str, ...]]:
    chains = []
    for source in importers:
        for target in imported:
            chain = graph.find_shortest_chain(importer=source, imported=target)
            if chain:
                chains.append(chain)
    return chains


def _child(name: str) -> str:
    return f"{PACKAGE}.{name}"


def test_every_module_has_a_layer(graph):
    named = {name for layer in LAYERS for name in layer}
    children = {m.split(".")[1] for m in graph.find_children(PACKAGE)}
    assert children - named == set(), "give each new top-level module a place in LAYERS"
    assert named - children == set(), "LAYERS names a module that is gone"


def test_no_import_cycles(graph):
    assert _cycles(graph) == []


def test_layers_import_only_downward(graph):
    assert _back_arrows(graph) == []


def test_pfs_client_side_never_imports_the_server(graph):
    server = _child("pfs.server")
    client_side = [m for m in graph.find_descendants(_child("pfs"))
                   if m != server and not m.startswith(server + ".")]
    assert client_side, "pfs has modules besides its server"
    assert _chains(graph, client_side, [server]) == []


def test_notebook_side_and_server_side_stay_apart(graph):
    notebook = [_child(n) for n in NOTEBOOK_SIDE]
    server = [_child(n) for n in SERVER_SIDE]
    assert _chains(graph, notebook, [_child("app"), _child("handlers")]) == []
    assert _chains(graph, server, notebook) == []


def test_the_checks_catch_a_circle_and_a_back_arrow(graph):
    """The checks above read a real graph; one added arrow makes each of them fail."""
    upward = copy.deepcopy(graph)
    upward.add_import(importer=_child("pfs.model"), imported=_child("app"))
    assert any(arrow.startswith(f"{_child('pfs')} -> {_child('app')}") for arrow in _back_arrows(upward))

    circle = copy.deepcopy(graph)
    mount_module = sorted(graph.find_children(_child("mount")))[0]
    labeling_module = sorted(graph.find_children(_child("labeling")))[0]
    circle.add_import(importer=mount_module, imported=labeling_module)
    circle.add_import(importer=labeling_module, imported=mount_module)
    assert _cycles(circle)
