"""The ``"containers"`` backend: each node in its own Podman container.

The node program is the ``processes`` backend's
(:func:`~tidesim.backends._nodeproc.node_main`). Each node runs in a
container named ``tidesim-TAG-nJ`` on a container network of its own run
(``tidesim-TAG``, a bridge with Podman's DNS), so nodes reach each other by
name: node ``i``'s link to ``j`` is a TCP connection to ``tidesim-TAG-nJ``
port 7411. The coordinator listens on a Unix socket in a directory mounted
into every container.

What a container runs: by default this machine's own filesystem, mounted
read-only with an overlay (``podman run --rootfs /:O``), so the node runs
this very Python and ``tidesim`` without building an image; or an image
built from the ``Containerfile`` at the repository's root (``image=``).

Obstacles of some machines, handled here: a container runtime may refuse
Podman's default ``nofile`` limit (this backend gives Podman a
``containers.conf`` with ``default_ulimits`` of its own), and ``crun``
refuses a hybrid cgroup layout (``runc`` is used where installed). Where
containers cannot start at all, :func:`containers_unavailable` says why in
one line.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from typing import Any

from ..errors import ConfigError
from ._nodeproc import ProcessBackend, ProcessRun
from .hardware import Backend

__all__ = ["ContainerBackend", "ContainerRun", "containers_unavailable"]

_CONF = '[containers]\ndefault_ulimits = ["nofile=1024:2048", "nproc=1024:1024"]\n'


@functools.cache
def _conf_dir() -> str:
    d = tempfile.mkdtemp(prefix="tidesim-podman-")
    with open(os.path.join(d, "containers.conf"), "w") as f:
        f.write(_CONF)
    return d


def _podman_cmd(args, runtime):
    env = {**os.environ, "CONTAINERS_CONF": os.path.join(_conf_dir(), "containers.conf")}
    return ["podman", *(["--runtime", runtime] if runtime else []), *args], env


def _podman_start(*args: str, runtime: str | None = None) -> subprocess.Popen:
    cmd, env = _podman_cmd(args, runtime)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)


def _podman(*args: str, check: bool = True, timeout_s: float = 60.0,
            runtime: str | None = None) -> subprocess.CompletedProcess:
    cmd, env = _podman_cmd(args, runtime)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s,
                         check=False)
    if check and res.returncode != 0:
        lines = (res.stderr.strip() or res.stdout.strip()).splitlines()
        raise OSError(f"podman {args[0]}: {lines[-1] if lines else res.returncode}")
    return res


def default_runtime() -> str | None:
    """``runc`` where installed (``crun`` refuses hybrid cgroups), else Podman's own."""
    return "runc" if shutil.which("runc") else None


@functools.cache
def containers_unavailable(runtime: str | None = None) -> str | None:
    """None when a container starts here, else why not (one line)."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman runc)"
    try:
        res = _podman("run", "--rm", "--network", "none", "--rootfs", "/:O", "/bin/true",
                      check=False, runtime=runtime or default_runtime())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"podman cannot run: {exc}"
    if res.returncode != 0:
        lines = res.stderr.strip().splitlines()
        return f"a container cannot start here: {lines[-1] if lines else res.returncode}"
    return None


class ContainerRun(ProcessRun):
    """A system running as one container per node (see the module docstring).

    Attributes:
        network: the run's container network.
        names: each node's container.
    """

    def _open(self, n, pairs, *, image: str | None, runtime: str | None) -> socket.socket:
        self.isolation, self.isolation_note, self.netns_names = "containers", None, []
        self.pids, self.names = [], []
        self._runtime = runtime or default_runtime()
        why = containers_unavailable(runtime)
        if why is not None:
            raise ConfigError("backend", "containers", f"cannot start here: {why}")
        tag = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.network = f"tidesim-{tag}"
        _podman("network", "create", self.network)
        # the control channel: a Unix socket in a directory mounted into every
        # container (network namespaces do not separate file systems)
        self._tmp = tempfile.TemporaryDirectory(prefix="tidesim-containers-")
        ctl = os.path.join(self._tmp.name, "ctl")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(ctl)
        server.listen(n)
        server.settimeout(60.0)
        self.names = [f"tidesim-{tag}-n{j}" for j in range(n)]
        where = ["--rootfs", "/:O", sys.executable] if image is None else [image, "python"]
        starts = []
        for j, name in enumerate(self.names):  # all at once: each takes a while
            code = ("from tidesim.backends._nodeproc import node_main; "
                    f"node_main({ctl!r}, {j}, None, where='container {name}')")
            starts.append(_podman_start(
                "run", "-d", "--name", name, "--hostname", name, "--network", self.network,
                "-v", f"{self._tmp.name}:{self._tmp.name}", "-e", "PYTHONDONTWRITEBYTECODE=1",
                *where, "-c", code, runtime=self._runtime))
        for p in starts:
            _, err = p.communicate(timeout=120)
            if p.returncode != 0:
                lines = err.strip().splitlines()
                raise OSError(f"podman run: {lines[-1] if lines else p.returncode}")
        return server

    def _bind_host(self, j: int) -> str:
        return "0.0.0.0"  # the container's own network namespace

    def _peer_host(self, j: int, r: int, r_host: str) -> str:
        return self.names[r]  # by name, on the run's network

    def _node_alive(self, j: int) -> bool:
        return self._connected(j)

    def _node_ended(self, j: int) -> str:
        res = _podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}",
                      self.names[j], check=False)
        state = res.stdout.strip() or "gone"
        return f"container {self.names[j]} ended ({state})"

    def _release(self) -> None:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            if self.names:
                _podman("rm", "-f", "-t", "0", *self.names, check=False)
        with contextlib.suppress(OSError, subprocess.TimeoutExpired, AttributeError):
            _podman("network", "rm", "-f", self.network, check=False)
        with contextlib.suppress(AttributeError):
            self._tmp.cleanup()


class ContainerBackend(ProcessBackend):
    """One Podman container per node (see the module docstring).

    Options:
        image: an image built from the ``Containerfile``; default the host's
            own filesystem (``--rootfs /:O``).
        runtime: the OCI runtime (default ``runc`` where installed).
        link_timeout_s, window_s: as for ``processes``.
    """

    name = "containers"
    run_class = ContainerRun

    def __init__(self, *, image: str | None = None, runtime: str | None = None,
                 link_timeout_s: float = 2.0, window_s: float | None = None,
                 **options: Any) -> None:
        if "netns" in options:
            Backend.__init__(self, **options)  # refused: not an option here
        super().__init__(link_timeout_s=link_timeout_s, window_s=window_s, **options)
        self.image, self.runtime = image, runtime

    def where(self) -> dict[str, Any]:
        return {"image": self.image, "runtime": self.runtime}
