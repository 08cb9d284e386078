"""The package's surface: version, stubs, docstrings, and the README's Python example as written."""

import pathlib
import re

import numpy as np

import diffusability as d

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_version_matches_the_library():
    cargo = (ROOT / "Cargo.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', cargo, re.M).group(1)
    assert d.__version__ == version


def test_stubs_cover_the_public_functions():
    pkg = pathlib.Path(d.__file__).parent
    stub = (pkg / "__init__.pyi").read_text()
    assert (pkg / "py.typed").exists()
    for name in d.__all__:
        assert re.search(rf"\b{name}\b", stub), name


def test_docstrings_name_each_metric():
    for f in (d.viv, d.lnc, d.linear_probe, d.spatial, d.sec):
        assert f.__doc__ and f.__name__ in f.__doc__
    names = [m["name"] for fam in d.registry() for m in fam["metrics"]]
    docs = " ".join(f.__doc__ for f in (d.viv, d.lnc, d.linear_probe, d.spatial, d.sec, d.uniformity))
    for n in names:
        assert f"``{n}``" in docs, n


def test_show_versions(capsys):
    d.show_versions()
    assert f"diffusability: {d.__version__}" in capsys.readouterr().out


def test_readme_python_example_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "README.md has no ```python block in its Python section"
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})


def test_family_without_metrics_says_so():
    if d._group_metrics("uniformity"):
        return
    try:
        d.uniformity(np.zeros((4, 1, 2, 2), np.float32))
    except d.DiffusabilityError as e:
        assert "uniformity" in str(e)
    else:
        raise AssertionError("expected DiffusabilityError")
