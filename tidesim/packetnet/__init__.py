"""A switched packet network in virtual time: the baseline bittide is compared to.

An :class:`EventLoop` runs tasks (``async def`` coroutines, each with a
:class:`Handle`) in virtual time; a :class:`SwitcherNetwork` delivers
:class:`Message` s between :class:`Node` s through a fluid-flow switch model
(:class:`GreedyDropSwitcher`). See ``docs/packetnet.md``.
"""

from ._loop import Event, EventLoop, Handle, Stream, Timer
from ._network import GreedyDropSwitcher, Message, Node, SwitcherNetwork

__all__ = ["Event", "EventLoop", "GreedyDropSwitcher", "Handle", "Message", "Node", "Stream",
           "SwitcherNetwork", "Timer"]
