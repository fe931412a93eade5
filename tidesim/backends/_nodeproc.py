"""The ``"processes"`` backend: one OS process per node, links over TCP.

Each node is an OS process (forked from a fresh single-threaded server
process that imported the core and loaded its kernels once) running
:class:`~tidesim.models._partition.NodeRun`: its own clock, elastic
buffers and controller, fed by the frames (frequency segments) its senders
send it over TCP. Where the machine allows (root and
``ip``), every node process lives in its own Linux network namespace, and
each pair of neighbours is joined by a veth pair with a /30 subnet of its
own: the links are real TCP connections between namespaces. The
coordinator (this process) talks to the nodes over a Unix socket, which
namespaces do not separate: it says how far each window reaches and when
an iteration settled it, and collects each node's segments and state at
every settled window, so that a run that loses a node keeps its trace up
to there.

Failures:

* a node process that dies (``kill -9``) closes its control socket: the run
  stops at once with :class:`NodeFailure` naming the node;
* a link that carries nothing for ``link_timeout_s`` (a cut cable, an
  ``iptables`` DROP) is reported by its receiver, naming the link;
* every process and namespace is removed on :meth:`~ProcessRun.stop`, on
  failure and on Ctrl-C.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import math
import os
import pickle
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

from ..errors import ConfigError, SimulationFault
from .hardware import Backend, HardwareRun, NodeFailure

__all__ = ["ProcessBackend", "ProcessRun", "netns_available"]

_HEADER = struct.Struct("!Q")
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_PORT = 7411  # each node listens here, in its own namespace


# ----------------------------------------------------------------------------- wire


def frame(data: bytes) -> bytes:
    """``data`` (a pickle) as one length-prefixed message of the wire."""
    return _HEADER.pack(len(data)) + data


def send_msg(sock: socket.socket, obj: Any) -> None:
    """One length-prefixed pickled message."""
    sock.sendall(frame(pickle.dumps(obj, protocol=5)))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise EOFError("connection closed")
        got += k
    return bytes(buf)


def recv_msg(sock: socket.socket) -> Any:
    """The next message of :func:`send_msg` (EOFError when the peer is gone)."""
    (n,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    return pickle.loads(_recv_exact(sock, n))


def _pickle_atom(obj: Any, cls: type) -> bytes:
    """``obj`` pickled for a node, with ``cls`` (an atom's class) by value
    where it comes from outside tidesim: a script's or a test's module is
    not one the node can import."""
    module = sys.modules.get(cls.__module__)
    if cls.__module__.split(".")[0] != "tidesim" and module is not None:
        try:
            import cloudpickle
        except ImportError:  # the class travels by name, as plain pickle sends it
            return pickle.dumps(obj, protocol=5)
        cloudpickle.register_pickle_by_value(module)
        try:
            return cloudpickle.dumps(obj, protocol=5)
        finally:
            cloudpickle.unregister_pickle_by_value(module)
    return pickle.dumps(obj, protocol=5)


# ----------------------------------------------------------------------------- namespaces


def netns_available() -> str | None:
    """None when node namespaces can be made here, else why not (one line)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "network namespaces need the 'ip' command (iproute2)"
    return None


def _pair_addrs(p: int) -> tuple[str, str]:
    """The two ends of neighbour pair ``p``'s /30 subnet."""
    a = 10 << 24 | 128 << 16  # 10.128.0.0/9: inside a node's namespace only
    base = a + 4 * p
    return (socket.inet_ntoa(struct.pack("!I", base + 1)),
            socket.inet_ntoa(struct.pack("!I", base + 2)))


def _ip_batch(lines: list[str], netns: str | None = None) -> None:
    cmd = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
    res = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True,
                         check=False)
    if res.returncode != 0:
        raise OSError(f"ip -batch failed: {res.stderr.strip().splitlines()[-1:]}")


class Namespaces:
    """One network namespace per node and a veth pair per pair of neighbours.

    Attributes:
        names: the namespace of each node.
        addr: ``addr[(i, j)]`` the address node ``j`` has on its link with ``i``.
    """

    def __init__(self, n: int, pairs: list[tuple[int, int]], tag: str) -> None:
        self.names = [f"tidesim-{tag}-{j}" for j in range(n)]
        self.addr: dict[tuple[int, int], str] = {}
        lines = [f"netns add {name}" for name in self.names]
        per_ns: list[list[str]] = [["link set lo up"] for _ in range(n)]
        for p, (a, b) in enumerate(pairs):
            # names are per namespace: node a's end towards b is "n<b>"
            lines.append(f"link add n{b} netns {self.names[a]} type veth peer name n{a} "
                         f"netns {self.names[b]}")
            xa, xb = _pair_addrs(p)
            per_ns[a] += [f"addr add {xa}/30 dev n{b}", f"link set n{b} up"]
            per_ns[b] += [f"addr add {xb}/30 dev n{a}", f"link set n{a} up"]
            self.addr[(b, a)], self.addr[(a, b)] = xa, xb
        try:
            _ip_batch(lines)
            for name, cmds in zip(self.names, per_ns, strict=True):
                _ip_batch(cmds, name)
        except Exception:
            self.remove()
            raise

    def remove(self) -> None:
        """Delete every namespace (their veths go with them)."""
        subprocess.run(["ip", "-force", "-batch", "-"], capture_output=True, check=False,
                       input="".join(f"netns del {name}\n" for name in self.names), text=True)

    @staticmethod
    def remove_stale() -> None:
        """Delete namespaces left by runs whose process is gone."""
        res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                             check=False)
        stale = []
        for line in res.stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            parts = name.split("-")
            if (len(parts) == 4 and parts[0] == "tidesim" and parts[1].isdigit()
                    and not os.path.exists(f"/proc/{parts[1]}")):
                stale.append(name)
        if stale:
            subprocess.run(["ip", "-force", "-batch", "-"], capture_output=True, check=False,
                           input="".join(f"netns del {s}\n" for s in stale), text=True)


def _enter_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# ----------------------------------------------------------------------------- the node


def node_main(ctl_addr: str | tuple[str, int], node: int, netns: str | None = None, *,
              own_process: bool = True, where: str = "") -> None:
    """A node: connect to the coordinator (a Unix socket path, or ``(host,
    port)``), open the links, run windows until told to stop.

    ``own_process``: this is the node's own process (it ignores Ctrl-C, which
    the coordinator handles, and dies with its parent); False in a task of
    someone else's worker; ``where`` says which, for messages.
    """
    if own_process:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _die_with_parent()
    if netns is not None:
        _enter_netns(netns)
    if isinstance(ctl_addr, str):
        ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ctl.connect(ctl_addr)
    else:
        ctl = socket.create_connection(ctl_addr, timeout=60.0)
        ctl.settimeout(None)
        ctl.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        _node_loop(ctl, node, netns, where)
    except (EOFError, OSError):
        # the coordinator or a neighbour went away: so does the node, quietly
        # (the coordinator reports what happened, once)
        pass
    finally:
        ctl.close()


def _node_loop(ctl: socket.socket, node: int, netns: str | None, where: str) -> None:
    from ..models._partition import NodeRun

    send_msg(ctl, ("hello", node, os.getpid(), where))
    _, system, kw, host, link_timeout_s, max_window_s = recv_msg(ctl)
    part = NodeRun(system, node, max_window_s=max_window_s, **kw)
    if host is None:  # where the coordinator reaches us from
        host = ctl.getsockname()[0]
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # in a namespace of its own (netns, container) a node has the port to itself
    lsock.bind((host, _PORT if host == "0.0.0.0" else 0))
    lsock.listen(len(part.senders) + 1)
    send_msg(ctl, ("listening", lsock.getsockname()[1], host))
    _, peers = recv_msg(ctl)
    outs: dict[int, socket.socket] = {}
    for r in part.receivers:
        s = socket.create_connection(peers[r], timeout=link_timeout_s)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        send_msg(s, ("from", node))
        outs[r] = s
    ins: dict[int, socket.socket] = {}
    lsock.settimeout(link_timeout_s)
    while len(ins) < len(part.senders):
        c, _ = lsock.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.settimeout(link_timeout_s)
        ins[recv_msg(c)[1]] = c
    lsock.close()
    send_msg(ctl, ("ready",))
    ghosts: dict = {}
    prev = None
    rows_sent = 0
    while True:
        cmd = recv_msg(ctl)
        if cmd[0] == "run":
            _, t1, it, key = cmd
            out = part.run(t1, ghosts, key)
            for s in outs.values():
                send_msg(s, (it, out))
            changed = prev is None or out != prev
            prev = out
            for i, c in ins.items():
                try:
                    got_it, segs = recv_msg(c)
                except (TimeoutError, EOFError, OSError) as exc:
                    why = "timeout" if isinstance(exc, TimeoutError) else "closed"
                    send_msg(ctl, ("link", i, why))
                    return
                if got_it != it:
                    send_msg(ctl, ("link", i, f"frame of iteration {got_it} in {it}"))
                    return
                ghosts[i] = segs
            send_msg(ctl, ("ran", it, changed, part.range_fault, part.log))
        elif cmd[0] == "app":
            if not _run_app(ctl, node, cmd, outs, ins, link_timeout_s):
                return
        elif cmd[0] == "atoms":
            from ._nodeatoms import run_atom

            if not run_atom(ctl, node, cmd, outs, ins, link_timeout_s):
                return
        elif cmd[0] == "commit":
            part.commit()
            fin = part.final(rows_sent)
            rows_sent += fin.records["samp_m"].size
            send_msg(ctl, ("committed", prev, fin))
            ghosts, prev = {}, None
        else:  # "stop"
            break
    for s in (*outs.values(), *ins.values()):
        s.close()


class _LinkDown(Exception):
    """A link of a node's logical-time run closed or went silent."""

    def __init__(self, sender: int, why: str) -> None:
        super().__init__(sender, why)
        self.sender, self.why = sender, why


_FRAMES = struct.Struct("!qqq")  # link, upto, count; then steps, words, taints


def _socket_port(ex, outs: dict, ins: dict, link_timeout_s: float):
    """A node's :class:`~tidesim.calendars._nodes.FramePort` over its link sockets.

    Each in-link's bytes are read as they come, as many messages a read as
    there are (one system call where a message a call would cost two).
    """
    import select

    from ..calendars._nodes import FramePort, Frames

    sender_of = {c: i for i, c in ins.items()}
    socks = list(ins.values())
    bufs = {c: bytearray() for c in socks}
    head = _FRAMES.size

    def parse(buf: bytearray, got: list) -> None:
        at = 0
        while len(buf) - at >= head:
            link, upto, n = _FRAMES.unpack_from(buf, at)
            end = at + head + 17 * n
            if len(buf) < end:
                break
            body = bytes(buf[at + head:end])
            got.append(Frames(link, upto, np.frombuffer(body, "<i8", n),
                              np.frombuffer(body, "<u8", n, 8 * n),
                              np.frombuffer(body, np.uint8, n, 16 * n)))
            at = end
        del buf[:at]

    class SocketPort(FramePort):
        def send(self, frames) -> None:
            n = len(frames.steps)
            outs[int(ex.ldst[frames.link])].sendall(b"".join((
                _FRAMES.pack(frames.link, frames.upto, n), frames.steps.astype("<i8").tobytes(),
                frames.words.astype("<u8").tobytes(), frames.taints.tobytes())))

        def recv(self, wait_for: list[int]) -> list:
            got: list = []
            timeout = link_timeout_s if wait_for else 0.0
            while True:
                ready = select.select(socks, [], [], timeout)[0]
                if not ready:
                    if timeout:
                        raise _LinkDown(int(ex.lsrc[wait_for[0]]), "timeout")
                    return got
                for c in ready:
                    try:
                        data = c.recv(1 << 16)
                    except OSError:
                        data = b""
                    if not data:
                        raise _LinkDown(sender_of[c], "closed")
                    bufs[c] += data
                    parse(bufs[c], got)
                timeout = 0.0 if got else timeout

        def idle(self) -> bool:
            """Nothing half-read is left on any link."""
            return not any(bufs.values())

    return SocketPort()


def _run_app(ctl: socket.socket, node: int, cmd, outs: dict, ins: dict,
             link_timeout_s: float) -> bool:
    """A logical-time run of this node's calendars (False: a link failed)."""
    from ..calendars._executor import Execution
    from ..calendars._nodes import CHUNK_STEPS, run_node

    _, sched, n_iter, faults = cmd
    ex = Execution(sched, n_iter, ring_extra=CHUNK_STEPS, **faults)
    ex.prepare(node)
    send_msg(ctl, ("app_ready",))
    if recv_msg(ctl)[0] != "app_go":
        return False
    # blocking sockets: Python polls a socket with a timeout before every
    # send and receive (a system call per frame); select keeps the timeout
    links = (*outs.values(), *ins.values())
    for c in links:
        c.settimeout(None)
    try:
        port = _socket_port(ex, outs, ins, link_timeout_s)
        stats = run_node(ex, node, port)
    except _LinkDown as exc:
        send_msg(ctl, ("link", exc.sender, exc.why))
        return False
    finally:
        for c in links:
            c.settimeout(link_timeout_s)
    if not port.idle():
        raise RuntimeError(f"node {node}: frames left unread after the logical-time run")
    send_msg(ctl, ("app_done", ex.part(node), stats))
    return True


# ----------------------------------------------------------------------------- the coordinator

def _warm() -> None:
    """Load the core's kernels once, so that every forked node has them."""
    from ..calendars import LogicalNetwork, execute, schedule
    from ..models import System, Topology
    from ..models._partition import NodeRun
    from ..waves.apps import get_app

    system = System(Topology.complete(2, latency_s=1e-7), offsets_ppm=[-1.0, 1.0])
    NodeRun(system, 0).run(1e-3, {})
    execute(schedule(get_app("counter", 2).graph(), LogicalNetwork.ring(2, latency_cycles=3)),
            2)


def _reap(out) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        out.write(f"exit {pid} {code}\n")
        out.flush()


def zygote_main() -> None:
    """The process node processes are forked from: it imported and warmed the
    core once, and has a single thread (forking is safe). Reads ``CTL NODE
    NETNS`` lines, answers ``forked NODE PID``; reports ``exit PID CODE``
    when a node ends (CODE < 0: killed by signal -CODE). Ends with its
    parent (stdin closed), and its nodes with it."""
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    _warm()
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    try:
        _serve(out)
    except OSError:  # the coordinator went away: so do we, and our nodes
        return


def _serve(out) -> None:
    import select
    import sys
    import traceback

    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0.2)
        _reap(out)
        if not ready:
            continue
        line = sys.stdin.readline()
        if not line:
            return
        ctl, node, netns = line.split()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, 0)
                os.dup2(2, 1)
                node_main(ctl, int(node), None if netns == "-" else netns)
            except BaseException:  # noqa: BLE001 (the coordinator hears of it)
                traceback.print_exc()
                code = 1
            os._exit(code)
        out.write(f"forked {node} {pid}\n")
        out.flush()


class _Zygote:
    """The running zygote (one per coordinating process, started when first needed)."""

    proc: subprocess.Popen | None = None
    exits: dict[int, int] = {}
    buf = b""

    @classmethod
    def get(cls) -> subprocess.Popen:
        if cls.proc is None or cls.proc.poll() is not None:
            import sys

            cls.proc = subprocess.Popen(
                [sys.executable, "-c", "from tidesim.backends._nodeproc import zygote_main; "
                 "zygote_main()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
            cls.buf = b""
            atexit.register(cls.close)
            line = cls._line(cls.proc, 120.0)
            if line.strip() != "ready":
                raise OSError(f"the node process server did not start: {line.strip()!r}")
        return cls.proc

    @classmethod
    def close(cls) -> None:
        """End the zygote (its nodes die with it)."""
        z, cls.proc = cls.proc, None
        if z is None:
            return
        with contextlib.suppress(OSError):
            z.stdin.close()
        try:
            z.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            z.kill()
            z.wait()
        z.stdout.close()

    @classmethod
    def fork(cls, ctl: str, node: int, netns: str | None) -> int:
        z = cls.get()
        z.stdin.write(f"{ctl} {node} {netns or '-'}\n".encode())
        while True:
            words = cls._line(z, None).split()
            if words[0] == "forked":
                return int(words[2])

    @classmethod
    def _line(cls, z, timeout_s: float | None) -> str:
        import select

        # unbuffered: select must see every byte not yet read
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while b"\n" not in cls.buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([z.stdout], [], [], left)[0]:
                return ""
            chunk = os.read(z.stdout.fileno(), 65536)
            if not chunk:
                raise OSError("the node process server ended")
            cls.buf += chunk
        raw, cls.buf = cls.buf.split(b"\n", 1)
        line = raw.decode()
        words = line.split()
        if words[0] == "exit":
            cls.exits[int(words[1])] = int(words[2])
        return line

    @classmethod
    def exit_code(cls, pid: int, wait_s: float = 1.0) -> int | None:
        """How node process ``pid`` ended (None: not known yet)."""
        deadline = time.monotonic() + wait_s
        z = cls.proc
        while pid not in cls.exits and z is not None and time.monotonic() < deadline:
            cls._line(z, max(0.0, deadline - time.monotonic()))
        return cls.exits.get(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


class ProcessRun(HardwareRun):
    """A system running as one OS process per node (see the module docstring).

    Attributes:
        isolation: ``"netns"`` (a namespace per node) or ``"none"`` (loopback TCP).
        isolation_note: why there are no namespaces (None where there are).
        netns_names: each node's namespace (empty without namespaces).
        pids: each node's process id.
        start_s: wall time the nodes took to start and connect (s).
    """

    def __init__(self, system, *, fidelity: str, every: int, record_controller_state: bool,
                 link_timeout_s: float, window_s: float | None, **where: Any) -> None:
        from ..models._partition import AllStable, Assembly, Windows

        t_start = time.perf_counter()
        self.system = system
        self.fidelity = fidelity
        n = system.n_nodes
        kw = {"fidelity": fidelity, "every": every,
              "record_controller_state": record_controller_state}
        self._asm = Assembly(system, **kw)
        self._win = Windows(system, window_s)
        self._allst = AllStable(system)
        self._time = 0.0
        self._stopped = False
        self._dead: set[int] = set()
        self._failure: NodeFailure | None = None
        self._finals: list = [None] * n
        self._records: list[list[dict]] = [[] for _ in range(n)]
        self._socks: list[socket.socket] = []
        links = system.topology.links
        pairs = sorted({(min(int(a), int(b)), max(int(a), int(b))) for a, b in links if a != b})
        try:
            server = self._open(n, pairs, **where)
            socks: list = [None] * n
            self.where = [""] * n
            for _ in range(n):
                c, _ = server.accept()
                _, j, pid, where = recv_msg(c)
                socks[j] = c
                self.where[j] = where or f"pid {pid}"
            server.close()
            self._socks = socks
            for j, c in enumerate(socks):
                send_msg(c, ("init", system, kw, self._bind_host(j), link_timeout_s,
                             self._win.max_s))
            at = [self._expect(j, "listening")[1:] for j in range(n)]
            for j, c in enumerate(socks):
                peers = {}
                for a, b in pairs:
                    if j in (a, b):
                        r = b if j == a else a
                        peers[r] = (self._peer_host(j, r, at[r][1]), at[r][0])
                send_msg(c, ("peers", peers))
            for j in range(n):
                self._expect(j, "ready")
        except BaseException:
            self._teardown()
            raise
        self.start_s = time.perf_counter() - t_start

    # ------------------------------------------------------------------ where nodes run
    def _open(self, n: int, pairs: list[tuple[int, int]], *, netns: bool | None) -> socket.socket:
        """Start the nodes; return the socket they connect to."""
        self.pids: list[int] = []
        self._ns: Namespaces | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="tidesim-nodes-")
        why = netns_available()
        if netns and why is not None:
            raise ConfigError("backend.netns", True, f"cannot be used here: {why}")
        use_ns = why is None if netns is None else bool(netns)
        if use_ns:
            Namespaces.remove_stale()
            try:
                self._ns = Namespaces(n, pairs, f"{os.getpid()}-{id(self) % 100000}")
            except OSError as exc:
                if netns:
                    raise ConfigError("backend.netns", True,
                                      f"cannot be used here: {exc}") from None
                use_ns, why = False, str(exc)  # where possible: here it is not
        self.isolation = "netns" if use_ns else "none"
        self.isolation_note = why
        self.netns_names = list(self._ns.names) if self._ns is not None else []
        ctl_path = os.path.join(self._tmp.name, "ctl")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(ctl_path)
        server.listen(n)
        server.settimeout(60.0)
        self.pids = [_Zygote.fork(ctl_path, j, self._ns.names[j] if use_ns else None)
                     for j in range(n)]
        return server

    def _bind_host(self, j: int) -> str | None:
        """Where node ``j`` listens (None: the address it reaches us from)."""
        return "0.0.0.0" if self._ns is not None else "127.0.0.1"

    def _peer_host(self, j: int, r: int, r_host: str) -> str:
        """The address node ``j`` connects to for its link to ``r``."""
        return self._ns.addr[(j, r)] if self._ns is not None else r_host

    def _node_alive(self, j: int) -> bool:
        return _alive(self.pids[j])

    def _connected(self, j: int) -> bool:
        """Node ``j``'s control connection is open (or not made yet)."""
        if j >= len(self._socks) or self._socks[j] is None:
            return True
        try:  # a closed connection reads as end of file
            return self._socks[j].recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False

    def _node_ended(self, j: int) -> str:
        """What node ``j`` was and how it ended, for a message."""
        code = _Zygote.exit_code(self.pids[j])
        how = (f"killed by signal {-code}" if code is not None and code < 0
               else f"exit status {code}" if code is not None else "its socket closed")
        return f"process {self.pids[j]} died ({how})"

    def _release(self) -> None:
        """Stop every node still running and free what holds them."""
        deadline = time.monotonic() + 1.0
        while any(_alive(p) for p in self.pids) and time.monotonic() < deadline:
            time.sleep(0.01)
        for pid in self.pids:
            if _alive(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        if self._ns is not None:
            self._ns.remove()
            self._ns = None
        self._tmp.cleanup()

    # ------------------------------------------------------------------ messages
    def _expect(self, j: int, kind: str):
        try:
            msg = recv_msg(self._socks[j])
        except (EOFError, OSError):
            self._fail_dead(j)
        if msg[0] == "link":
            self._fail_link(msg[1], j, msg[2])
        if msg[0] == "atom_failed":
            self._teardown()
            raise SimulationFault(f"node {j}: its atom failed: {msg[1]}; the nodes were stopped")
        if msg[0] != kind:
            raise RuntimeError(f"node {j}: expected {kind!r}, got {msg[0]!r}")
        return msg

    def _broadcast(self, msg) -> None:
        for j, c in enumerate(self._socks):
            try:
                send_msg(c, msg)
            except OSError:  # its end is closed: the node is gone
                self._fail_dead(j)

    def _gather(self, kind: str, timeout_s: float | None = None) -> list:
        """One ``kind`` reply from every node, in any order; a node that dies
        meanwhile fails the run at once, and so does one whose reply does
        not come within ``timeout_s``."""
        n = len(self._socks)
        replies: list = [None] * n
        sel = selectors.DefaultSelector()
        for j, c in enumerate(self._socks):
            sel.register(c, selectors.EVENT_READ, j)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            left = n
            while left:
                ready = sel.select(timeout=1.0 if deadline is None else
                                   max(0.0, min(1.0, deadline - time.monotonic())))
                if deadline is not None and not ready and time.monotonic() >= deadline:
                    waiting = [j for j in range(n) if replies[j] is None]
                    self._teardown()
                    raise SimulationFault(
                        f"nodes {', '.join(map(str, waiting))}: no {kind!r} within "
                        f"{timeout_s:g} s (a deadlock, or a lost message); the nodes were stopped")
                if not ready:
                    for j in range(n):
                        if replies[j] is None and not self._node_alive(j):
                            self._fail_dead(j)
                    continue
                for key, _ in ready:
                    j = key.data
                    replies[j] = self._expect(j, kind)
                    sel.unregister(key.fileobj)
                    left -= 1
        finally:
            sel.close()
        return replies

    def _partial(self):
        try:
            return self.trace()
        except Exception:  # noqa: BLE001 (the failure itself is what matters)
            return None

    def _fail_dead(self, j: int) -> None:
        what = self._node_ended(j)
        self._dead.add(j)
        self._raise(NodeFailure(
            f"node {j}: {what}; the run stopped at t={self._time!r} s, the last time every "
            "node reached", self._partial(), node=j, time_s=self._time))

    def _fail_link(self, i: int, j: int, why: str) -> None:
        if why == "closed":
            # a link closes when its sender's process ends: name the node, not the link
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                if not self._node_alive(i):
                    self._fail_dead(i)
                time.sleep(0.01)
        self._raise(NodeFailure(
            f"link {i}->{j}: node {j} received nothing from node {i} ({why}); the run "
            f"stopped at t={self._time!r} s, the last time every node reached",
            self._partial(), node=j, link=(i, j), time_s=self._time))

    def _raise(self, exc: NodeFailure) -> None:
        self._failure = exc
        self._teardown()
        raise exc

    # ------------------------------------------------------------------ the interface
    @property
    def time_s(self) -> float:
        return self._time

    @property
    def stopped(self) -> bool:
        return self._stopped

    def advance(self, until_s=None, *, until_cycles=None) -> HardwareRun:
        if self._stopped:
            raise ConfigError("advance", until_s, "the run was stopped")
        until = self.system.check_until(until_s, until_cycles)
        if until < self._time:
            raise ConfigError("run.until_s", until,
                              f"must not be before the run's time ({self._time!r} s)")
        try:
            while self._time < until:
                self._window(self._win.end(self._time, until))
        except KeyboardInterrupt:
            self._teardown()
            raise
        return self

    def _window(self, t1: float) -> None:
        from ..models._partition import settle_window

        def step(it, key):
            self._broadcast(("run", t1, it, key))
            replies = self._gather("ran")
            return any(r[2] for r in replies), [r[4] for r in replies], replies

        it, replies = settle_window(self._allst, step)
        faults = [r[3] for r in replies if r[3] is not None]
        self._broadcast(("commit",))
        done = self._gather("committed")
        segs = {}
        for j, (_, out, fin) in enumerate(done):
            segs[j] = out
            self._finals[j] = fin
            self._records[j].append(fin.records)
        self._asm.add(t1, segs)
        self._time = t1
        self._win.done(it)
        if faults:
            node, t, m, rel = min(faults, key=lambda f: (f[1], f[0]))
            from ..models.simulation import MAX_REL

            self._stopped = True
            self._teardown()
            raise SimulationFault(
                f"node {node}: frequency offset {rel * 1e6:.6g} ppm at t={t:.9g} s (cycle {m}) "
                f"is beyond ±{MAX_REL * 1e6:.0f} ppm: the controller is unstable",
                self._partial())

    def execute(self, sched, iterations, *, flip_probability=0.0, seed=0, crash=None,
                fault_cycles=None):
        """Each node runs its own calendars and actions, with frames over its links.

        The nodes first build their memories and compile the actions; the
        result's ``wall_s`` counts from when they all start to step their
        calendars until the last one finished. ``app_stats`` holds each
        node's wall time, kernel calls and waits for frames.
        """
        from ..calendars._executor import Execution

        self._check_schedule(sched)
        faults = dict(flip_probability=flip_probability, seed=seed, crash=crash,
                      fault_cycles=fault_cycles)
        whole = Execution(sched, iterations, **faults)  # checks the arguments here
        try:
            self._broadcast(("app", sched, whole.n_iter, faults))
            self._gather("app_ready")
            t0 = time.perf_counter()
            self._broadcast(("app_go",))
            done = self._gather("app_done")
            wall = time.perf_counter() - t0
        except KeyboardInterrupt:
            self._teardown()
            raise
        for _, part, _stats in done:
            whole.merge(part)
        self.app_stats = [stats for _, _, stats in done]
        return whole.result(wall)

    def run_atoms(self, atoms, *, timeout_s: float = 60.0, tie_seed: int | None = None):
        """Each node runs its atom in wall time; packets go over the node's link
        connections, forwarded along shortest paths (``tie_seed`` has no use
        here: real time breaks ties).

        The result's ``time_s`` and ``wall_s`` count from when every node
        was told to start until the last atom finished; ``finish_s`` is
        each node's own.

        Raises:
            SimulationFault: an atom raised (its node and error named), or the
                atoms did not all finish within ``timeout_s`` (the nodes
                still waiting named); the nodes are stopped.
            NodeFailure: a node died or a link failed.
        """
        from ..packetnet._atoms import AtomRun, connected_routes

        atoms = self._check_atoms(atoms, timeout_s)
        n = len(atoms)
        hops = connected_routes(n, self.system.topology.links, "the system's links")
        cmds = []
        for j, atom in enumerate(atoms):
            try:
                cmds.append(_pickle_atom(("atoms", atom, hops[j], n), type(atom)))
            except Exception as exc:  # noqa: BLE001 (whatever pickle raises, said in one line)
                raise ConfigError(f"atoms[{j}]", type(atom).__name__,
                                  f"must be picklable to run on the nodes "
                                  f"({type(exc).__name__}: {exc})") from None
        try:
            for j, c in enumerate(self._socks):
                try:
                    c.sendall(frame(cmds[j]))
                except OSError:
                    self._fail_dead(j)
            self._gather("atoms_ready")
            t0 = time.perf_counter()
            self._broadcast(("atoms_go",))
            done = self._gather("atom_done", timeout_s=timeout_s)
            wall = time.perf_counter() - t0
            self._broadcast(("atoms_end",))
            self._gather("atoms_ended")
        except KeyboardInterrupt:
            self._teardown()
            raise
        return AtomRun([d[1] for d in done], wall, sum(d[2]["sent"] for d in done),
                       sum(d[2]["bytes"] for d in done), wall,
                       [d[2]["finish_s"] for d in done])

    def trace(self, *, requested_until_s=None):
        from ..models._partition import join_records

        if any(f is None for f in self._finals):
            # nothing settled yet: the state every node starts in
            self._finals = [self._initial_final(j) for j in range(self.system.n_nodes)]
            self._records = [[f.records] for f in self._finals]
        finals = [f._replace(records=join_records(r))
                  for f, r in zip(self._finals, self._records, strict=True)]
        return self._asm.trace(finals, self._time, requested_until_s=requested_until_s)

    def _initial_final(self, j: int):
        from ..models._partition import NodeRun

        return NodeRun(self.system, j, fidelity=self.fidelity,
                       every=self._asm.sim._every,
                       record_controller_state=self._asm.sim._keep_state).final()

    def health(self) -> dict[int, str]:
        out = {}
        for j in range(self.system.n_nodes):
            if j in self._dead or (not self._stopped and not self._node_alive(j)):
                out[j] = "dead"
            else:
                out[j] = "stopped" if self._stopped else "up"
        return out

    def windows(self) -> dict:
        """How many windows and iterations the run took so far."""
        return self._win.stats()

    def stop(self) -> None:
        if not self._stopped:
            for c in self._socks:
                with contextlib.suppress(OSError):
                    send_msg(c, ("stop",))
        self._teardown()

    def __del__(self) -> None:
        if not getattr(self, "_stopped", True):
            with contextlib.suppress(Exception):  # at interpreter exit, do what can be done
                self.stop()

    def _teardown(self) -> None:
        self._stopped = True
        for c in self._socks:
            with contextlib.suppress(OSError):
                c.close()
        if not getattr(self, "_released", False):
            self._released = True
            self._release()


class ProcessBackend(Backend):
    """One OS process per node, in its own network namespace where possible.

    Options:
        netns: True (required), False (loopback TCP), None (where possible; default).
        link_timeout_s: how long a receiver waits for a frame before it
            reports the link as cut (s, default 2).
        window_s: a fixed window length (s); default adaptive.
    """

    name = "processes"

    run_class: type[ProcessRun] = ProcessRun
    """The run this backend makes (a subclass places nodes elsewhere)."""

    def __init__(self, *, netns: bool | None = None, link_timeout_s: float = 2.0,
                 window_s: float | None = None, **options: Any) -> None:
        super().__init__(**options)
        if not (isinstance(link_timeout_s, (int, float)) and math.isfinite(link_timeout_s)
                and link_timeout_s > 0):
            raise ConfigError("backend.link_timeout_s", link_timeout_s, "must be > 0")
        if window_s is not None and not (isinstance(window_s, (int, float)) and window_s > 0):
            raise ConfigError("backend.window_s", window_s, "must be > 0")
        self.netns, self.link_timeout_s, self.window_s = netns, float(link_timeout_s), window_s

    def where(self) -> dict[str, Any]:
        """Where the nodes run: the keyword arguments of :attr:`run_class`'s ``_open``."""
        return {"netns": self.netns}

    def start(self, system, *, fidelity="event", record="summary", stop_on_fault=False,
              record_controller_state=False) -> ProcessRun:
        from ..models._partition import check_splittable

        check_splittable(system, stop_on_fault=stop_on_fault, backend=self.name)
        every = system._start_options(fidelity, record)
        return self.run_class(system, fidelity=fidelity, every=every,
                              record_controller_state=record_controller_state,
                              link_timeout_s=self.link_timeout_s, window_s=self.window_s,
                              **self.where())
