"""tilesim installs as one top-level name: every package folder is listed in pyproject, a
folder with its own ``arch/`` or ``sim/`` package does not shadow ours, and a built wheel
holds nothing but ``tilesim`` (and its dist-info)."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUP = PYPROJECT["tool"]["setuptools"]


def _folder_of(package: str) -> Path:
    """The repository folder of an installed package name, by package-dir (the longest
    mapped prefix, then the rest of the dotted name as folders)."""
    dirs = SETUP["package-dir"]
    parts = package.split(".")
    for i in range(len(parts), 0, -1):
        head = ".".join(parts[:i])
        if head in dirs:
            return ROOT.joinpath(dirs[head], *parts[i:])
    return ROOT.joinpath(*parts)


def test_every_package_folder_is_listed():
    """A folder with an __init__.py that pyproject does not list would be left out of the
    wheel (an import that works from the checkout and fails once installed)."""
    listed = {_folder_of(p): p for p in SETUP["packages"]}
    for p, folder in zip(listed.values(), listed):
        assert (folder / "__init__.py").is_file(), f"pyproject.toml lists {p}, but " \
            f"{folder.relative_to(ROOT)}/__init__.py does not exist"
    missing = []
    for top in ("arch", "workloads", "mapper", "sim", "reports", "explore", "tilesim"):
        for init in (ROOT / top).rglob("__init__.py"):
            if init.parent not in listed:
                missing.append(str(init.parent.relative_to(ROOT)))
    assert not missing, ("pyproject.toml [tool.setuptools] packages misses "
                         + ", ".join(sorted(missing))
                         + ": add them as tilesim.<dotted path> (package-dir maps the folders)")


def test_version_comes_from_one_place():
    """pyproject reads the version from tilesim/_version.py; the package reports it."""
    import tilesim
    import tilesim._version
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert SETUP["dynamic"]["version"] == {"attr": "tilesim._version.__version__"}
    assert tilesim.__version__ == tilesim._version.__version__


def test_a_folder_with_its_own_arch_package(tmp_path):
    """Run from a folder whose own arch/ and sim/ packages fail on import: ours are
    tilesim.arch and tilesim.sim, so neither import tilesim nor a run is disturbed."""
    for name in ("arch", "sim", "mapper"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            f"raise ImportError('the user\\'s own {name} package was imported')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    got = subprocess.run([sys.executable, "-c", "import tilesim, tilesim.arch, tilesim.sim; "
                          "print(tilesim.arch.__file__); print(tilesim.load_arch('tpu_v1').name)"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr
    assert Path(got.stdout.split()[0]).is_relative_to(ROOT) and "tpu_v1" in got.stdout
    run = subprocess.run([sys.executable, "-m", "tilesim.cli", "run", "--arch", "tpu_v1",
                          "--model", "alexnet", "--quiet"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "user's own" not in run.stderr


@pytest.mark.slow
def test_wheel_installs_only_tilesim(tmp_path):
    """A built wheel's RECORD names only tilesim/ and tilesim-VERSION.dist-info/, holds every
    listed package, the preset YAMLs and the families' accuracy data, and its version is tilesim._version's."""
    import tilesim._version
    got = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                          str(tmp_path), str(ROOT)], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert got.returncode == 0, got.stderr[-2000:]
    (whl,) = tmp_path.glob("tilesim-*.whl")
    v = tilesim._version.__version__
    with zipfile.ZipFile(whl) as z:
        record = z.read(f"tilesim-{v}.dist-info/RECORD").decode()
        meta = z.read(f"tilesim-{v}.dist-info/METADATA").decode()
    names = [line.split(",")[0] for line in record.splitlines() if line]
    assert {n.split("/")[0] for n in names} == {"tilesim", f"tilesim-{v}.dist-info"}
    assert f"\nVersion: {v}\n" in meta
    for p in SETUP["packages"]:
        assert p.replace(".", "/") + "/__init__.py" in names, p
    assert "tilesim/arch/presets/tpu_v1.yaml" in names
    assert "tilesim/workloads/data/families.yaml" in names


def test_a_source_checkout_finds_its_subpackages_without_an_install_hook():
    """From the checkout's root, with no editable-install hook active (site's .pth files
    not processed), `import tilesim.arch` finds arch/ beside tilesim/ (the fallback in
    tilesim/__init__.py): a non-editable install run from the repository still works."""
    import sysconfig
    code = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import tilesim.arch, "
            "tilesim.sim.cost; print(tilesim.arch.__file__)")
    out = subprocess.run([sys.executable, "-S", "-c", code, str(ROOT),
                          sysconfig.get_paths()["purelib"]], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert Path(out.strip()) == ROOT / "arch" / "__init__.py"
