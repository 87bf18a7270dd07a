"""The package's layers, read from its real import graph (grimp).

Each layer imports only the layers below it; no two modules import each other, directly or
round a circle; the pfs client side never reaches the pachd stand-in; the notebook side
(client/, magics) never imports app or handlers, and the server side never imports the notebook
side. Chains are followed into every module of a package. docs/architecture.md draws the same
picture.
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
    """Import chains from any module in ``importers`` (packages with all their modules) into any
    module in ``imported``."""
    chains = []
    for source in importers:
        for target in imported:
            chains += sorted(graph.find_shortest_chains(importer=source, imported=target, as_packages=True))
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


def _pfs_client_side(graph: grimp.ImportGraph) -> list[str]:
    server = _child("pfs.server")
    return sorted(m for m in graph.find_children(_child("pfs")) if m != server)


def _pfs_reaching_the_server(graph: grimp.ImportGraph) -> list[tuple[str, ...]]:
    return _chains(graph, _pfs_client_side(graph), [_child("pfs.server")])


def _sides_meeting(graph: grimp.ImportGraph) -> list[tuple[str, ...]]:
    notebook = [_child(n) for n in NOTEBOOK_SIDE]
    server = [_child(n) for n in SERVER_SIDE]
    return (_chains(graph, notebook, [_child("app"), _child("handlers")])
            + _chains(graph, server, notebook))


def test_pfs_client_side_never_imports_the_server(graph):
    assert _pfs_client_side(graph), "pfs has modules besides its server"
    assert _pfs_reaching_the_server(graph) == []


def test_notebook_side_never_imports_the_server_side_nor_the_reverse(graph):
    assert _sides_meeting(graph) == []


def test_the_checks_catch_a_circle_a_back_arrow_and_sides_meeting(graph):
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

    # arrows into modules deep inside a package, not only into its __init__
    client_to_server = copy.deepcopy(graph)
    client_to_server.add_import(importer=_child("pfs.pachyderm.errors"), imported=_child("pfs.server.errors"))
    assert _pfs_reaching_the_server(client_to_server)

    for importer, imported in (("handlers.repos", "client.convert"), ("client.http", "handlers.base")):
        meeting = copy.deepcopy(graph)
        meeting.add_import(importer=_child(importer), imported=_child(imported))
        assert _sides_meeting(meeting), (importer, imported)
