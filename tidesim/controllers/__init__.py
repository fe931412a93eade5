"""Clock controllers and the plug-in contract they share."""

from ._contract import STEP_SIGNATURE, STEP_TYPE, Controller, controller_step
from .pi import PI, pi_step

__all__ = ["PI", "STEP_SIGNATURE", "STEP_TYPE", "Controller", "controller_step", "pi_step"]
