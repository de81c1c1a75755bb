"""User code and special files: a PyTorch factory file that exits or parses sys.argv at
import is contained (exit 2, or tilesim's own arguments kept); a FIFO or other non-regular
file given as a model, architecture or table is refused at once, never read."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from clean_outputs import one_error

from tilesim.cli import main

NET = ("import torch\n"
       "def build():\n"
       "    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))\n")


def run(model, *extra):
    return ["run", "--arch", "eyeriss_like", "--model", model, "--input-shape", "1x3x8x8",
            "--quiet", *extra]


@pytest.mark.parametrize("code, shown", [("0", "sys.exit(0)"), ("3", "sys.exit(3)"),
                                         ("'usage: train.py'", "sys.exit('usage: train.py')"),
                                         ("None", "sys.exit(None)")])
def test_sys_exit_at_import_is_an_input_error(tmp_path, capsys, code, shown):
    """A file that calls sys.exit(...) when imported: exit 2 (never 0 with no output, never
    its own code), one line naming the file and the fix; sys.argv and sys.path restored."""
    pytest.importorskip("torch")
    f = tmp_path / "train.py"
    f.write_text(f"import sys\n{NET}sys.exit({code})\n")
    argv, path = list(sys.argv), list(sys.path)
    one_error(run(f"{f}:build"), capsys, f, shown, "while being imported", "__main__")
    assert sys.argv == argv and sys.path == path


def test_sys_exit_in_the_factory_is_an_input_error(tmp_path, capsys):
    pytest.importorskip("torch")
    f = tmp_path / "net.py"
    f.write_text("import sys\ndef build():\n    sys.exit(0)\n")
    one_error(run(f"{f}:build"), capsys, "build() called sys.exit(0)", "Fix:")


def test_a_script_that_parses_argv_at_import_sees_only_its_path(tmp_path, capsys):
    """argparse at import (a training script): it sees sys.argv == [file] (so none of
    tilesim's flags), the run goes on with tilesim's own arguments (--quiet: one line),
    and sys.argv is restored."""
    pytest.importorskip("torch")
    f = tmp_path / "train.py"
    seen = tmp_path / "argv.txt"
    f.write_text("import argparse, sys\n"
                 f"open({str(seen)!r}, 'w').write(repr(sys.argv))\n"
                 "p = argparse.ArgumentParser()\n"
                 "p.add_argument('--lr', type=float, default=0.1)\n"
                 "args = p.parse_args()\n" + NET)
    argv = list(sys.argv)
    assert main(run(f"{f}:build")) == 0
    assert seen.read_text() == repr([str(f)])
    out = capsys.readouterr().out
    assert out.startswith("total:") and len(out.splitlines()) == 1
    assert sys.argv == argv


@pytest.fixture
def no_hang():
    """Fail (instead of hanging the suite) if a test blocks for 20 s."""
    def boom(*_):
        raise AssertionError("blocked: a special file was opened")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("opt, name, needle", [
    ("--model", "net.onnx", "FIFO"), ("--model", "topo.csv", "FIFO"),
    ("--model", "table.yaml", "FIFO"), ("--model", "net.py:build", "FIFO"),
    ("--arch", "arch.yaml", "special file"), ("--arch", "scale.cfg", "special file"),
])
def test_a_fifo_input_is_refused_at_once(tmp_path, capsys, no_hang, opt, name, needle):
    """A FIFO with no writer as a model, architecture or table: refused (exit 2, one line
    naming it) without opening it, which would wait for a writer forever."""
    fifo = tmp_path / name.split(":")[0]
    os.mkfifo(fifo)
    target = str(fifo) + (":build" if name.endswith(":build") else "")
    argv = (["run", "--arch", target if opt == "--arch" else "eyeriss_like",
             "--model", target if opt == "--model" else "resnet18", "--quiet"]
            + (["--input-shape", "1x3x8x8"] if name.endswith(".onnx") or ":" in name else []))
    one_error(argv, capsys, fifo, needle, "regular file")


def test_a_folder_or_device_as_model_is_refused(tmp_path, capsys, no_hang):
    (tmp_path / "dir.onnx").mkdir()
    one_error(["run", "--arch", "eyeriss_like", "--model", str(tmp_path / "dir.onnx"),
               "--quiet"], capsys, "dir.onnx", "a folder")
    dev = tmp_path / "zero.csv"
    try:
        os.mknod(dev, 0o666 | __import__("stat").S_IFCHR, os.makedev(1, 5))   # /dev/zero
    except OSError:
        pytest.skip("mknod not permitted")
    one_error(["run", "--arch", "eyeriss_like", "--model", str(dev), "--quiet"], capsys,
              dev, "special file")
    assert Path(dev).exists()
