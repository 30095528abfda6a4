"""Emergency events and what each does to the room's limits (TAPAS.md sections 1 and 4).

=====================  ===================================================================
event                  effect
=====================  ===================================================================
``ups-failure[:F]``    every row's power limit x F (default 0.75: losing one UPS of a 4N/3
                       set forces the room to 75 % of its power; limits split evenly down the
                       hierarchy, so each row keeps 75 %)
``ahu-failure:A[:F]``  aisle A's AHU airflow x F (default 0.90)
``heatwave:+DC``       outside temperature + D degrees C (through the inlet model)
``row-power:R:KW``     row R's power limit set to KW
``none``               no change (routing or a what-if at today's limits)
=====================  ===================================================================

Several events apply in the order given. Parsing errors name the offending text and the forms
accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from tapas_opt.errors import InventoryError, Problem, problems_of, value_or_problems

HEATWAVE_MAX_C = 25.0
"""Largest heat-wave shift accepted: beyond it the outside temperature leaves anything recorded."""
FORMS = "ups-failure[:FRACTION] | ahu-failure:AISLE[:FRACTION] | heatwave:+5C | row-power:ROW:KW | none"
UPS_FRACTION = 0.75
AHU_FRACTION = 0.90


@dataclass(frozen=True)
class Event:
    """One parsed event: ``kind`` with an optional ``target`` (aisle or row id) and ``value``."""

    kind: str
    target: str | None = None
    value: float | None = None
    text: str = ""

    def describe(self) -> str:
        if self.kind == "ups-failure":
            return f"UPS failure: every row to {self.value:.0%} of its power limit"
        if self.kind == "ahu-failure":
            return f"AHU failure: aisle {self.target} to {self.value:.0%} of its airflow"
        if self.kind == "heatwave":
            return f"heat wave: outside temperature {self.value:+.1f} C"
        if self.kind == "row-power":
            return f"row {self.target} power limit set to {self.value:g} kW"
        return "no event"


def _bad(text: str, why: str) -> InventoryError:
    return InventoryError([Problem("bad_event", "--event", f"{text!r}: {why}", f"use {FORMS}")])


def _fraction(text: str, raw: str) -> float:
    try:
        value = float(raw.rstrip("%")) / (100.0 if raw.endswith("%") else 1.0)
    except ValueError:
        raise _bad(text, f"{raw!r} is not a number") from None
    if not 0 < value <= 1:
        raise _bad(text, f"fraction {value:g} must be in (0, 1]")
    return value


def _split_target(rest: str) -> tuple[str, str | None]:
    """``ID:VALUE`` read from the right, so that ids may contain ':' (``R:1:10`` is row ``R:1``);
    a last field that is not a number is part of the id."""
    head, sep, tail = rest.rpartition(":")
    if sep and head and re.fullmatch(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?\s*(%|kw)?\s*", tail, re.I):
        return head, tail
    return rest, None


def parse_event(text: str, aisle_ids=None) -> Event:
    """Parse one ``--event`` value (see the module docstring for the forms). Row and aisle ids
    may contain ':'; with ``aisle_ids`` known, ``ahu-failure:A:1`` is aisle ``A:1`` at the
    default fraction when ``A:1`` is an aisle, else aisle ``A`` at fraction 1."""
    raw = text.strip()
    kind_text, _, rest = raw.partition(":")
    kind = kind_text.strip().lower()
    if kind in ("ahu-failure", "row-power") and rest:
        target, value = _split_target(rest)
        if kind == "ahu-failure" and aisle_ids is not None and rest in {str(a) for a in aisle_ids}:
            target, value = rest, None
        parts = [kind_text, target] + ([value] if value is not None else [])
    else:
        parts = raw.split(":")
    if not raw:
        raise _bad(text, "the event is empty")
    if kind == "none":
        if len(parts) > 1:
            raise _bad(raw, "'none' takes no value: expected none")
        return Event("none", text=raw)
    if kind == "ups-failure":
        if len(parts) > 2:
            raise _bad(raw, "expected ups-failure or ups-failure:FRACTION")
        return Event(kind, None, _fraction(raw, parts[1]) if len(parts) == 2 else UPS_FRACTION, raw)
    if kind == "ahu-failure":
        if len(parts) not in (2, 3) or not parts[1]:
            raise _bad(raw, "expected ahu-failure:AISLE or ahu-failure:AISLE:FRACTION")
        return Event(kind, parts[1], _fraction(raw, parts[2]) if len(parts) == 3 else AHU_FRACTION, raw)
    if kind == "heatwave":
        m = re.fullmatch(r"\s*([+-]?\d+(?:\.\d+)?)\s*(?:C|°C)?\s*", parts[1] if len(parts) == 2 else "", re.I)
        if not m:
            raise _bad(raw, "expected heatwave:+DEGREESC, e.g. heatwave:+5C")
        shift = float(m.group(1))
        if not 0 < shift <= HEATWAVE_MAX_C:
            raise _bad(raw, f"a heat wave raises the outside temperature by more than 0 and at most "
                            f"{HEATWAVE_MAX_C:g} C")
        return Event(kind, None, shift, raw)
    if kind == "row-power":
        if len(parts) != 3 or not parts[1]:
            last = rest.rpartition(":")[2]
            raise _bad(raw, f"{last!r} is not a number of kW" if ":" in rest else "expected row-power:ROW:KW")
        try:
            kw = float(parts[2].lower().removesuffix("kw"))
        except ValueError:
            raise _bad(raw, f"{parts[2]!r} is not a number of kW") from None
        if kw <= 0:
            raise _bad(raw, "the row limit must be > 0 kW")
        return Event(kind, parts[1], kw, raw)
    raise _bad(raw, f"unknown event kind {kind!r}")


def parse_events(texts, aisle_ids=None) -> tuple[Event, ...]:
    """Parse several events; an empty list means ``none``. Every bad one is reported at once."""
    events, problems = [], []
    for text in texts or ():
        event, found = value_or_problems(lambda: parse_event(text, aisle_ids))
        events += [event] if event is not None else []
        problems += found
    if problems:
        raise InventoryError(problems)
    return tuple(e for e in events if e.kind != "none") or (Event("none", text="none"),)


@dataclass(frozen=True)
class Limits:
    """The limits and outside temperature an event leaves (arrays by row / aisle position)."""

    row_limit_kw: np.ndarray
    aisle_limit_cfm: np.ndarray
    outside_shift_c: float
    notes: tuple[str, ...] = ()
    """What an event does that the user may not have meant (a row-power limit above today's)."""


def apply_events(events, row_ids, row_limit_kw, aisle_ids, aisle_limit_cfm) -> Limits:
    """Limits after the events; unknown rows or aisles are reported all at once."""
    rows = np.asarray(row_limit_kw, float).copy()
    aisles = np.asarray(aisle_limit_cfm, float).copy()
    row_pos = {str(r): i for i, r in enumerate(row_ids)}
    aisle_pos = {str(a): i for i, a in enumerate(aisle_ids)}
    shift = 0.0
    problems, notes = [], []
    for ev in events:
        if ev.kind == "ups-failure":
            rows = rows * ev.value
        elif ev.kind == "ahu-failure":
            if ev.target not in aisle_pos:
                problems.append(Problem("unknown_aisle", "--event", f"{ev.text!r}: aisle {ev.target!r} is not in aisles.csv",
                                        f"aisles: {', '.join(list(aisle_pos)[:12])}{' ...' if len(aisle_pos) > 12 else ''}"))
                continue
            aisles[aisle_pos[ev.target]] *= ev.value
        elif ev.kind == "heatwave":
            shift += ev.value
        elif ev.kind == "row-power":
            if ev.target not in row_pos:
                problems.append(Problem("unknown_row", "--event", f"{ev.text!r}: row {ev.target!r} is not in rows.csv",
                                        f"rows: {', '.join(list(row_pos)[:12])}{' ...' if len(row_pos) > 12 else ''}"))
                continue
            if ev.value > rows[row_pos[ev.target]]:
                notes.append(f"{ev.text!r} raises the limit of row {ev.target!r} from {rows[row_pos[ev.target]]:g} "
                             f"to {ev.value:g} kW (row-power sets the limit; give a lower value to model a loss)")
            rows[row_pos[ev.target]] = ev.value
    if problems:
        raise InventoryError(problems)
    return Limits(rows, aisles, shift, tuple(notes))


def event_problems(texts, row_ids, aisle_ids) -> list[Problem]:
    """Every problem of event texts against a room, found without its forecast: each text's
    syntax, then the rows and aisles they name that the room lacks (all at once)."""
    row_ids, aisle_ids = [str(r) for r in row_ids], [str(a) for a in aisle_ids]
    parsed, problems = [], []
    for text in texts or ():
        problems += problems_of(lambda: parsed.append(parse_event(text, aisle_ids)))
    return problems + problems_of(lambda: apply_events(parsed, row_ids, np.ones(len(row_ids)), aisle_ids,
                                                       np.ones(len(aisle_ids))))
