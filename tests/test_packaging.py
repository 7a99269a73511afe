"""The package as users install it: a wheel built from the sources holds every subpackage and
data file and works on its own (the editable install of `make venv` would hide what is
missing; the demo's end-to-end test, tests/demo/test_demo.py, runs from this wheel too), and
install_requires lists exactly what the package imports."""

import ast
import configparser
import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "keras_bert_x")

# Runs against the installed wheel only: every module imports, the bundled corpus is there.
_CHECK = textwrap.dedent("""
    import json, os, pkgutil, sys, importlib
    import keras_bert_x
    from keras_bert_x.data.corpus import bundled_documents
    modules = sorted(m.name for m in pkgutil.walk_packages(keras_bert_x.__path__, "keras_bert_x.")
                     if not m.name.endswith("__main__"))
    files = [importlib.import_module(name).__file__ for name in modules]
    print(json.dumps({"file": keras_bert_x.__file__, "modules": modules, "files": files,
                      "documents": len(bundled_documents())}))
""")


def _source_modules():
    out = set()
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py") and name != "__main__.py":
                rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3]
                out.add(rel.replace(os.sep, ".").removesuffix(".__init__"))
    return out


def test_wheel_holds_every_module_and_data_file(installed_wheel):
    import zipfile

    wheel, _ = installed_wheel
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in _source_modules():
        path = module.replace(".", "/")
        assert f"{path}.py" in names or f"{path}/__init__.py" in names, module
    for data in ("keras_bert_x/data/brown/brown.txt.gz", "keras_bert_x/data/brown/LICENSE.md"):
        assert data in names


def test_installed_wheel_imports_and_finds_its_data(installed_wheel, tmp_path):
    import json

    _, target = installed_wheel
    env = dict(os.environ, PYTHONPATH=str(target), TF_CPP_MIN_LOG_LEVEL="3")
    run = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    for file in [result["file"], *result["files"]]:  # from the wheel, not the checkout
        assert file.startswith(str(target)), file
    assert set(result["modules"]) | {"keras_bert_x"} == _source_modules()
    assert result["documents"] == 500


def _imported_top_level_modules():
    names = set()
    for folder, _, files in os.walk(PACKAGE):
        for file in files:
            if file.endswith(".py"):
                tree = ast.parse(open(os.path.join(folder, file), encoding="utf-8").read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        names.update(a.name.split(".")[0] for a in node.names)
                    elif isinstance(node, ast.ImportFrom) and node.level == 0:
                        names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"keras_bert_x"}


def _normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def test_install_requires_is_what_the_package_imports():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "setup.cfg"))
    required = {_normalise(re.split(r"[<>=!~ \[]", line.strip())[0])
                for line in parser["options"]["install_requires"].strip().splitlines()}
    distributions = importlib.metadata.packages_distributions()
    imported = set()
    for module in _imported_top_level_modules():
        assert module in distributions, f"{module} is imported but no installed package has it"
        imported.update(_normalise(d) for d in distributions[module])
    assert imported - required == set(), "imported at run time but not in install_requires"
    assert required - imported == set(), "in install_requires but never imported"
