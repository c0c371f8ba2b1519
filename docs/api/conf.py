"""Sphinx configuration of the API reference (``make docs``; built offline, no intersphinx).

Built nitpicky (``-n -W``): every cross-reference to an rfprior or operators name must
resolve. Only names of other libraries (torch, numpy, …), which this offline build cannot
link, are ignored below.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
import warnings
from typing import Any

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, ROOT)  # the source tree, also without an editable install

project = "rfprior"
author = "rfprior developers"
copyright = "rfprior developers"

# offline: no intersphinx (nothing is fetched while building); MathJax is loaded by the browser
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
]

# every name in a module's __all__ is public API: listed even without a docstring (module-level data needs
# a "#:" comment, else autodoc cannot see it)
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_inherit_docstrings = False  # overrides of torch.nn.Module.forward & co. would show torch's docstrings
autoclass_content = "class"
add_module_names = False

numpydoc_show_class_members = False  # members are documented by autodoc, not numpydoc's autosummary tables
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []
suppress_warnings: list[str] = []

nitpicky = True
# Names of OTHER libraries, which this offline build cannot link (no intersphinx), and numpydoc's
# plain-words types. Never list rfprior or operators names here: a broken reference to one of them
# must fail the build. (Builtins and typing names Sphinx resolves itself.)
_EXTERNAL = [
    r"torch(\..*)?",
    r"numpy(\..*)?",
    r"scipy(\..*)?",
    r"xarray(\..*)?",
    r"pandas(\..*)?",
    r"h5py(\..*)?",
    r"matplotlib(\..*)?",
    r"dask(\..*)?",
    r"distributed(\..*)?",
    r"finufft(\..*)?",
    r"torchkbnufft(\..*)?",
    r"pathlib(\..*)?",
    r"os\.PathLike",
    r"typing(\..*)?",
    r"collections\.abc\..*",
    r"optional",
    r"callable",
]
nitpick_ignore_regex = [(r"py:(class|obj|data|exc|func|meth|attr|mod)", name) for name in _EXTERNAL]


# ---------------------------------------------------------------------------------------------------
# One home per object. rfprior and operators re-export names (``rfprior.reconstruct`` is
# ``rfprior.fit.reconstruct``, ``operators.backproject`` is ``operators.classical.backproject``).
# Every page is ``automodule <page name>``; an object is documented on one page only, its *home*:
# among the pages whose module exports it, the one that is the longest prefix of the module that
# defines it (else the most specific page). References by any of its importable names resolve to it.

_HERE = os.path.dirname(os.path.abspath(__file__))
PAGES = sorted(f[:-4] for f in os.listdir(_HERE) if f.endswith(".rst") and f != "index.rst")
_PROJECT = ("rfprior", "operators")
_MISSING = object()


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception:  # a page whose module does not import fails the build in autodoc itself
        return None


def _exports(mod: Any) -> dict[str, Any]:
    """What ``automodule :members:`` lists for ``mod``: its ``__all__``, else what it defines."""
    names = getattr(mod, "__all__", None)
    if names is None:
        own = mod.__name__
        names = [n for n, v in vars(mod).items() if not n.startswith("_") and getattr(v, "__module__", None) == own]
    return {n: getattr(mod, n) for n in names if hasattr(mod, n)}


def _is_value(obj: Any) -> bool:
    """Numbers, strings and the like: identity says nothing about where they come from."""
    return isinstance(obj, (int, float, complex, str, bytes, bool, type(None)))


_HOMES: dict[int, str] = {}


def _homes() -> dict[int, str]:
    """``id(object) → page`` for every object exported by a page (filled once)."""
    if not _HOMES:
        where: dict[int, list[str]] = {}
        keep: list[Any] = []
        for page in PAGES:
            mod = _module(page)
            for obj in (_exports(mod) if mod is not None else {}).values():
                if not _is_value(obj):
                    where.setdefault(id(obj), []).append(page)
                    keep.append(obj)
        for obj in keep:
            pages = where[id(obj)]
            defined = getattr(obj, "__module__", None) or getattr(obj, "__name__", "") or ""
            own = [p for p in pages if defined == p or defined.startswith(p + ".")]
            _HOMES[id(obj)] = max(own or pages, key=lambda p: (p.count("."), p))
    return _HOMES


def _skip_member(app: Any, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """On a page, document the module's public names (``__all__``) that live here, and only those."""
    page = app.env.docname
    if what != "module" or page not in PAGES:
        return None
    mod = _module(page)
    if mod is None or name not in _exports(mod) or inspect.ismodule(obj):
        return None
    if _is_value(obj):
        return skip
    return _homes().get(id(obj), page) != page  # documented on its home page, even without a docstring


def _lookup(path: str) -> Any:
    """The object named by the dotted ``path`` (a module, then attributes), or ``_MISSING``."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        mod = _module(".".join(parts[:i])) if parts[0] in _PROJECT else None
        if mod is None:
            continue
        obj = mod
        for attr in parts[i:]:
            obj = getattr(obj, attr, _MISSING)
            if obj is _MISSING:
                return _MISSING
        return obj
    return _MISSING


def _same(obj: Any) -> Any:
    return getattr(obj, "__func__", obj)  # a classmethod looked up on its class


_DOCUMENTED: dict[str, Any] = {}


def _documented(domain: Any) -> dict[int, str]:
    """``id(object) → documented full name`` over the Python domain's objects (rebuilt when it grows)."""
    if _DOCUMENTED.get("size") != len(domain.objects):
        index: dict[int, str] = {}
        keep: list[Any] = []
        for fullname, entry in domain.objects.items():
            if entry.objtype == "module" or entry.aliased:
                continue
            obj = _lookup(fullname)
            if obj is not _MISSING and not _is_value(obj):
                index.setdefault(id(_same(obj)), fullname)
                keep.append(obj)
        _DOCUMENTED.update(size=len(domain.objects), index=index, keep=keep)
    return _DOCUMENTED["index"]


_DOCSTRING_OF = re.compile(r"docstring of ([\w.]+)")


def _resolve_alias(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a reference to an rfprior/operators object by another of its names.

    ``operators.classical.backproject`` finds ``operators.backproject``; ``rfprior.reconstruct``
    finds ``rfprior.fit.reconstruct``; a bare name in a docstring is looked up in the module (and
    class) that defines the docstring, as Python would, as well as where it is documented. The target
    must still be documented somewhere: a reference to an undocumented or missing object stays broken.
    """
    from sphinx.util.nodes import make_refnode

    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    scopes = [node.get("py:module"), ".".join(p for p in (node.get("py:module"), node.get("py:class")) if p)]
    source = _DOCSTRING_OF.search(str(node.source or ""))
    if source:  # the docstring's own module and class (the object it documents and its parents)
        parts = source.group(1).split(".")
        scopes += [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
    candidates = [target] + [f"{s}.{target}" for s in scopes if s]
    domain = env.get_domain("py")
    for cand in candidates:
        if not cand.startswith(_PROJECT):
            continue
        obj = _lookup(cand)
        if obj is _MISSING:
            continue
        if inspect.ismodule(obj):  # a submodule: the page of its nearest documented package
            name = obj.__name__
            while name and name not in domain.modules:
                name = name.rpartition(".")[0]
            if not name:
                continue
            entry = domain.modules[name]
            return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)
        fullname = None if _is_value(obj) else _documented(domain).get(id(_same(obj)))
        if fullname is None:  # an attribute holding a plain value: found through its documented class
            parent_path, _, attr = cand.rpartition(".")
            parent = _lookup(parent_path) if parent_path else _MISSING
            owner = _documented(domain).get(id(parent)) if inspect.isclass(parent) else None
            fullname = f"{owner}.{attr}" if owner and f"{owner}.{attr}" in domain.objects else None
        if fullname is None:
            continue
        entry = domain.objects[fullname]
        return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, fullname)
    return None


def _public_bases(app: Any, name: str, obj: Any, options: Any, bases: list[Any]) -> None:
    """The "Bases:" line names documented classes: a private or undocumented project base gives way to its bases."""

    def public(cls: Any) -> list[Any]:
        mod = getattr(cls, "__module__", "") or ""
        if not mod.startswith(_PROJECT) or id(cls) in _homes():
            return [cls]
        return [b for base in cls.__bases__ for b in public(base)]

    new = [b for base in bases for b in public(base)]
    bases[:] = [b for i, b in enumerate(new) if b not in new[:i] and b is not object] or [object]


def _dataclass_signature(app: Any, what: str, name: str, obj: Any, options: Any, signature: Any, ret: Any) -> Any:
    """A dataclass field's ``default_factory`` shows as ``<factory>``, which the signature parser cannot read."""
    if signature and "<factory>" in signature:
        return signature.replace("<factory>", "..."), ret
    return None


def _numpydoc_warnings_count() -> None:
    """numpydoc reports markup it cannot read (an unknown section, whose text it drops) as a Python
    warning, which ``-W`` would not see: pass those on as Sphinx warnings."""
    from sphinx.util import logging

    log = logging.getLogger("numpydoc")
    show = warnings.showwarning

    def showwarning(message: Any, category: Any, filename: str, lineno: int, *args: Any) -> None:
        if "numpydoc" in filename:
            log.warning("%s", message, type="numpydoc")
        else:
            show(message, category, filename, lineno, *args)

    warnings.filterwarnings("always", category=UserWarning, module=r"numpydoc(\..*)?")
    warnings.showwarning = showwarning


def setup(app: Any) -> dict[str, Any]:
    _numpydoc_warnings_count()
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("autodoc-process-signature", _dataclass_signature)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("missing-reference", _resolve_alias)
    return {"parallel_read_safe": True}
