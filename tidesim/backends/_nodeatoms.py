"""Atoms on a node process: the node's end of :meth:`ProcessRun.run_atoms`.

The node runs its :class:`~tidesim.packetnet.Atom` in wall time
(:class:`~tidesim.packetnet._atoms.WallRuntime`). Packets travel over the
node's link connections as length-prefixed pickles; a packet for a node
further away is forwarded along shortest paths, also after the node's own
atom has finished. Sockets are non-blocking while atoms run, with a queue
per outgoing link, so two nodes that send each other large vectors at once
do not wait on each other's full buffers.

Protocol with the coordinator: ``("atoms", atom, hops, n)`` ->
``("atoms_ready",)``; ``("atoms_go",)`` -> ``("atom_done", result, stats)``
(or ``("atom_failed", text)``); then, once every node is done,
``("atoms_end",)``: each node sends an end mark on every outgoing link,
reads every incoming link up to its mark (so nothing of this run is left on
a link), and answers ``("atoms_ended",)``.
"""

from __future__ import annotations

import pickle
import select
import socket
import time
from collections import deque
from typing import Any

from ._nodeproc import _HEADER, _LinkDown, frame, recv_msg, send_msg

_END = "end"


class _Wire:
    """Framed pickles over non-blocking link sockets, with a queue per outgoing link."""

    def __init__(self, outs: dict, ins: dict, ctl: socket.socket) -> None:
        self.outs, self.ctl = outs, ctl
        self.peer_of = {c: r for r, c in outs.items()}
        self.sender_of = {c: i for i, c in ins.items()}
        self.rbuf = {c: bytearray() for c in ins.values()}
        self.wbuf = {c: bytearray() for c in outs.values()}
        for c in (*outs.values(), *ins.values()):
            c.setblocking(False)

    def put(self, to: int, obj: Any) -> None:
        sock = self.outs[to]
        self.wbuf[sock] += frame(pickle.dumps(obj, protocol=5))
        self._flush(sock)

    def _flush(self, sock: socket.socket) -> None:
        buf = self.wbuf[sock]
        try:
            while buf:
                n = sock.send(buf)
                del buf[:n]
        except BlockingIOError:
            pass
        except OSError:  # the peer is gone
            raise _LinkDown(self.peer_of[sock], "closed") from None

    def busy(self) -> bool:
        return any(self.wbuf.values())

    def poll(self, timeout: float | None) -> tuple[list, bool]:
        """What came within ``timeout`` (s; None: until something does):
        ``(sender, message)`` pairs, and whether the coordinator spoke."""
        writing = [s for s, b in self.wbuf.items() if b]
        r, w, _ = select.select([*self.rbuf, self.ctl], writing, [], timeout)
        for s in w:
            self._flush(s)
        got = []
        ctl = False
        for c in r:
            if c is self.ctl:
                ctl = True
                continue
            try:
                data = c.recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                raise _LinkDown(self.sender_of[c], "closed")
            buf = self.rbuf[c]
            buf += data
            at = 0
            while len(buf) - at >= _HEADER.size:
                (n,) = _HEADER.unpack_from(buf, at)
                if len(buf) - at - _HEADER.size < n:
                    break
                got.append((self.sender_of[c], pickle.loads(
                    buf[at + _HEADER.size:at + _HEADER.size + n])))
                at += _HEADER.size + n
            del buf[:at]
        return got, ctl


def run_atom(ctl: socket.socket, node: int, cmd, outs: dict, ins: dict,
             link_timeout_s: float) -> bool:
    """This node's part of a run of atoms (False: a link failed or the run was aborted)."""
    from ..packetnet._atoms import WallRuntime, drive

    _, atom, hops, n = cmd
    send_msg(ctl, ("atoms_ready",))
    if recv_msg(ctl)[0] != "atoms_go":
        return False
    wire = _Wire(outs, ins, ctl)
    inbox: deque = deque()
    done = False  # this node's atom finished: packets for it are dropped
    ended: set = set()  # in-links whose end mark came

    def route(p) -> None:
        if p.dest != node:
            wire.put(int(hops[p.dest]), ("pkt", p))
        elif not done:
            inbox.append(p)

    def take_in(got: list) -> None:
        for sender, msg in got:
            if msg[0] == "pkt":
                route(msg[1])
            else:
                ended.add(sender)

    def pump(timeout: float | None) -> bool:
        """Move what arrives within ``timeout``; True when the coordinator spoke."""
        got, spoke = wire.poll(timeout)
        take_in(got)
        return spoke

    def serve(what: str, arg):
        if what == "take":
            while not inbox:
                if pump(None):
                    raise _Aborted
            return inbox.popleft()
        deadline = time.monotonic() + arg  # "pause": compute time; packets keep moving
        while (left := deadline - time.monotonic()) > 0:
            if pump(left):
                raise _Aborted
        return None

    t0 = time.monotonic()
    rt = WallRuntime(atom, node, n, route, t0)
    try:
        try:
            result = drive(atom.invoke(rt), serve)
        except (_LinkDown, _Aborted):
            raise
        except Exception as exc:  # noqa: BLE001 (the atom's own failure: reported, not fatal here)
            send_msg(ctl, ("atom_failed", f"{type(exc).__name__}: {exc}"))
            # stay up, links open, until the coordinator ends the run: a node
            # that left now would look to its neighbours like a dead one
            recv_msg(ctl)
            return False
        done = True
        finish_s = time.monotonic() - t0
        inbox.clear()
        send_msg(ctl, ("atom_done", result, {"finish_s": finish_s, "sent": rt.sent,
                                             "bytes": rt.bytes_sent}))
        # forward for the others until every atom is done
        while not pump(None):
            pass
        if recv_msg(ctl)[0] != "atoms_end":
            return False
        for r in outs:
            wire.put(r, (_END,))
        while len(ended) < len(ins) or wire.busy():
            got, _ = wire.poll(link_timeout_s)
            if not got and not wire.busy():
                raise _LinkDown(min(set(ins) - ended), "timeout")
            take_in(got)
        send_msg(ctl, ("atoms_ended",))
        return True
    except _LinkDown as exc:
        send_msg(ctl, ("link", exc.sender, exc.why))
        return False
    except _Aborted:
        return False
    finally:
        for c in (*outs.values(), *ins.values()):
            c.setblocking(True)
            c.settimeout(link_timeout_s)


class _Aborted(Exception):
    """The coordinator spoke while atoms still ran: it gave up on the run."""

