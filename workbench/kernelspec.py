"""The project's Jupyter kernelspec (``kernels/workbench/kernel.json``).

The committed spec says ``python``, which jupyter_client resolves to the interpreter
that launches the kernel. ``install`` writes a copy that names this interpreter by its
absolute path, so papermill (``-k workbench``), Voilà and JupyterLab run notebooks in
the project environment whichever Jupyter starts them.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from workbench import paths
from workbench.errors import ConfigError

__all__ = ["KERNEL_NAME", "install", "installed_path", "render_spec", "spec_source"]

KERNEL_NAME = "workbench"


def spec_source() -> Path:
    path = paths.project_root() / "kernels" / KERNEL_NAME / "kernel.json"
    if not path.exists():
        raise ConfigError(f"kernelspec not found at {path}; is the project checked out whole?")
    return path


def render_spec(python: str | None = None) -> dict:
    """The kernelspec with ``argv[0]`` set to ``python`` (default: this interpreter)."""
    spec = json.loads(spec_source().read_text())
    spec["argv"][0] = python or sys.executable
    spec.setdefault("env", {})
    return spec


def install(scope: str = "sys-prefix", name: str = KERNEL_NAME) -> Path:
    """Install the kernelspec for ``scope`` in {"user", "sys-prefix"}; return its folder."""
    from jupyter_client.kernelspec import KernelSpecManager

    if scope not in ("user", "sys-prefix"):
        raise ConfigError(f"unknown kernel scope {scope!r}: use user or sys-prefix")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / name
        folder.mkdir()
        (folder / "kernel.json").write_text(json.dumps(render_spec(), indent=2) + "\n")
        ksm = KernelSpecManager()
        dest = ksm.install_kernel_spec(
            str(folder), kernel_name=name, user=scope == "user",
            prefix=sys.prefix if scope == "sys-prefix" else None,
        )
    return Path(dest)


def installed_path(name: str = KERNEL_NAME) -> Path | None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return Path(KernelSpecManager().get_kernel_spec(name).resource_dir)
    except NoSuchKernel:
        return None
