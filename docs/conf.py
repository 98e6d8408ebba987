"""Sphinx configuration of the skrobust documentation."""

import importlib
import inspect
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import skrobust  # noqa: E402

project = "skrobust"
author = "skrobust developers"
copyright = "2026, skrobust developers"
release = skrobust.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
html_theme = "pydata_sphinx_theme"
html_title = "skrobust"
html_theme_options = {"navigation_with_keys": False}

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
}
# No network at build time: keep cross-references local.
intersphinx_disabled_reftypes = ["*"]
intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py|quickstart\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "plot_gallery": "True",
}

PACKAGES = ("skrobust", "skcausal", "skbandit")


def _public_api():
    """(module name, [public names]) for every public module of the packages."""
    seen = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        modules = [module] + [
            getattr(module, name)
            for name in getattr(module, "__all__", [])
            if inspect.ismodule(getattr(module, name, None))
        ]
        for sub in getattr(module, "_PUBLIC_SUBMODULES", ()):
            modules.append(importlib.import_module(f"{package}.{sub}"))
        for mod in modules:
            names = [
                n
                for n in getattr(mod, "__all__", [])
                if not inspect.ismodule(getattr(mod, n, None)) and not n.startswith("_")
            ]
            if names:
                seen.append((mod.__name__, sorted(names)))
    return seen


def _write_api_page(srcdir):
    lines = [
        "API reference",
        "=============",
        "",
        "Generated from each package's ``__all__``.",
        "",
    ]
    for module, names in _public_api():
        lines += [f"``{module}``", "-" * (len(module) + 4), ""]
        lines += [f".. currentmodule:: {module}", "", ".. autosummary::"]
        lines += ["   :toctree: gen_modules", "   :nosignatures:", ""]
        lines += [f"   {name}" for name in names] + [""]
    (Path(srcdir) / "api.rst").write_text("\n".join(lines))


# written before autosummary reads it
_write_api_page(Path(__file__).resolve().parent)


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document only members defined in our packages (not sklearn's mixins)."""
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and module and not module.startswith(PACKAGES):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
