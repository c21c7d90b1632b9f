"""The hard eligibility rule, defined once: who may take a contact at all.

A pair (contact, agent) is eligible when the agent has proficiency above 0 and at least
``min_proficiency`` on the contact's intent (a missing skill is 0, never eligible), speaks
the contact's language when ``require_language`` is set, and has room (free capacity, or for
static tables capacity) on the contact's channel. The router's retrieval kernel, the
simulator and the tick benchmark's naive pipeline all call these two functions; they are
numba ufuncs, so the same definition runs inside jitted loops and on numpy arrays.

>>> import numpy as np
>>> skilled(np.array([0.0, 0.1, 0.5, 0.5]), np.array([True, True, True, False]), 0.2, True)
array([False, False,  True, False])
>>> bool(eligible(0.5, False, 2, 0.2, False)), bool(eligible(0.5, True, 0, 0.2, True))
(True, False)
"""
from __future__ import annotations

from numba import vectorize


@vectorize(["boolean(float64, boolean, float64, boolean)"], cache=True)
def skilled(proficiency, speaks, min_proficiency, require_language):
    """Skill and language (capacity aside): ``proficiency > 0``, ``>= min_proficiency``, and
    the agent speaks the contact's language unless ``require_language`` is off."""
    return proficiency > 0.0 and proficiency >= min_proficiency and (speaks or not require_language)


@vectorize(["boolean(float64, boolean, int64, float64, boolean)"], cache=True)
def eligible(proficiency, speaks, room, min_proficiency, require_language):
    """:func:`skilled` and ``room > 0`` on the contact's channel (free or static capacity)."""
    return room > 0 and proficiency > 0.0 and proficiency >= min_proficiency and (speaks or not require_language)
