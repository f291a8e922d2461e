"""Importing eegcrp changes nothing in the process: no backend, no pyplot, no umask, no malloc."""

from __future__ import annotations

import subprocess
import sys

CODE = r"""
import importlib, os, pkgutil, sys
import matplotlib
import sklearn  # sets KMP_* variables of its own at import
backend = matplotlib.rcParams._get("backend")
env = dict(os.environ)
import eegcrp
names = [m.name for m in pkgutil.walk_packages(eegcrp.__path__, "eegcrp.")
         if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
import eegcrp.training.loop as loop
print(len(names), matplotlib.rcParams._get("backend") is backend,
      "matplotlib.pyplot" in sys.modules, dict(os.environ) == env, loop._malloc_tuned)
"""


def test_importing_every_module_has_no_side_effects():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                         check=True).stdout.split()
    assert int(out[0]) > 50
    # backend untouched, pyplot never imported, environment unchanged, malloc untuned
    assert out[1:] == ["True", "False", "True", "None"]


def test_without_zennit_the_package_imports_and_explanations_say_how_to_install_it():
    code = ("import sys; sys.modules['zennit'] = None\n"
            "import eegcrp, eegcrp.cli, eegcrp.stages, eegcrp.report, eegcrp.store\n"
            "from eegcrp.relevance import band_sum  # readers need no zennit\n"
            "try:\n    from eegcrp.relevance import ConceptExplainer\n"
            "except ImportError as exc:\n    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("MissingDependencyError")
    assert "pip install --no-deps zennit==0.4.6" in out
