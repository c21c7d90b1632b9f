"""A synthetic contact centre with a known truth: agents, shifts, arrivals and outcomes.

``generate_world(seed=...)`` draws agents (sparse skills, languages, tenure, sentiment handling,
style, channel capacities, shifts, a hidden ability no feature shows), a customer pool (repeat
customers keep their language, style and tier) and an arrival profile by hour and weekday whose
volume is set so that the offered load is ``occupancy`` of the staffed capacity (see
docs/model.md for the arithmetic). ``World.truth`` gives the expected outcomes of any pair,
``World.draw_outcomes`` draws them; ``generate_history`` (assign.world.synth_history) routes a
history through a logging policy.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assign.constants import DAY_S
from assign.errors import InputError
from assign.schema import CHANNELS, Agents, Contacts
from assign.world.truth import COEF_NAMES, DEFAULT_COEF, draw, truth_many

WORLD_SCHEMA = "assign.world/1"

INTENT_NAMES = (
    "billing_question", "billing_dispute", "card_lost", "card_activation", "card_declined",
    "payment_failed", "refund_status", "address_change", "password_reset", "account_locked",
    "fraud_report", "loan_inquiry", "loan_payment", "mortgage_question", "savings_rate",
    "transfer_abroad", "transfer_missing", "statement_request", "fee_complaint", "direct_debit",
    "mobile_app_issue", "online_banking", "overdraft", "credit_limit", "account_closure",
    "new_account", "insurance_claim", "investment_advice", "cheque_deposit", "atm_issue",
    "pension_question", "business_account", "tax_document", "identity_check", "complaint_general",
    "beneficiary_setup", "currency_exchange", "travel_notice", "rewards_points", "other",
)
LANGUAGES = ("en", "es", "fr", "de")
LANGUAGE_SHARE = (0.72, 0.14, 0.08, 0.06)
STYLES = ("direct", "empathetic", "detailed")
TIERS = ("regular", "priority")
#: Relative arrivals by hour of day (shared by all channels and weekdays).
HOUR_PROFILE = np.array([0.15, 0.10, 0.08, 0.08, 0.10, 0.20, 0.40, 0.70, 1.00, 1.20, 1.30, 1.30,
                         1.20, 1.20, 1.25, 1.20, 1.10, 1.00, 0.90, 0.80, 0.65, 0.50, 0.35, 0.25])
#: Share of agents off on each weekday (Mon..Sun): the weekday pattern of staffing and volume.
OFF_SHARE = (0.0, 0.0, 0.02, 0.02, 0.04, 0.06, 0.10)
CHANNEL_MIX = (0.50, 0.35, 0.15)              # voice, chat, email share of contacts
CHANNEL_HANDLE_S = (150.0, 270.0, 180.0)      # typical handle time per channel
_CHANNEL_HANDLE = np.asarray(CHANNEL_HANDLE_S)
CHANNEL_PATIENCE_S = (240.0, 420.0, 2 * DAY_S)
SHIFT_H = 10


@dataclass(frozen=True)
class Truth:
    """Expected outcomes of contact-agent pairs under the hidden model."""

    p_resolved: np.ndarray
    csat_mean: np.ndarray
    handle_mean_s: np.ndarray


@dataclass(frozen=True, eq=False)
class AgentArrays:
    """The agents table as arrays in the world's vocabularies (row j is agent j): what the
    truth, the shift clock and the history generator read."""

    skill: np.ndarray            # (n_agents, n_intents) proficiency, 0 = no skill
    speaks: np.ndarray           # (n_agents, n_languages) bool
    off: np.ndarray              # (n_agents, 7) bool: off on that weekday
    capacity: np.ndarray         # (n_agents, n_channels) int32
    style: np.ndarray            # (n_agents,) int32 style code
    tenure_days: np.ndarray
    sentiment_handling: np.ndarray
    ability: np.ndarray          # hidden: no feature shows it
    speed: np.ndarray            # hidden
    shift_start_h: np.ndarray
    shift_len_h: np.ndarray      # 24 for an agent whose shift start equals its end

    @classmethod
    def from_frame(cls, ag: pd.DataFrame, *, intents: tuple[str, ...], languages: tuple[str, ...],
                   styles: tuple[str, ...]) -> AgentArrays:
        ii = {k: n for n, k in enumerate(intents)}
        li = {k: n for n, k in enumerate(languages)}
        si = {k: n for n, k in enumerate(styles)}
        n = len(ag)
        skill = np.zeros((n, len(intents)))
        speaks = np.zeros((n, len(languages)), dtype=bool)
        off = np.zeros((n, 7), dtype=bool)
        for j, (sk, langs, days) in enumerate(zip(ag["skills"], ag["languages"], ag["off_days"])):
            for k, v in sk.items():
                skill[j, ii[k]] = v
            speaks[j, [li[x] for x in langs]] = True
            off[j, list(days)] = True
        shift_len = np.array((ag["shift_end_h"] - ag["shift_start_h"]) % 24, dtype=np.float64)
        shift_len[shift_len == 0] = 24.0
        capacity = ag[[f"capacity_{c}" for c in CHANNELS]].to_numpy(np.int32)
        return cls(skill=skill, speaks=speaks, off=off, capacity=capacity,
                   style=np.array([si[s] for s in ag["style"]], dtype=np.int32),
                   tenure_days=ag["tenure_days"].to_numpy(np.float64),
                   sentiment_handling=ag["sentiment_handling"].to_numpy(np.float64),
                   ability=ag["ability"].to_numpy(np.float64), speed=ag["speed"].to_numpy(np.float64),
                   shift_start_h=ag["shift_start_h"].to_numpy(np.float64), shift_len_h=shift_len)


@dataclass(frozen=True, eq=False)
class World:
    """A synthetic centre. ``agents`` has one row per agent (see module doc); ``customers`` the
    pool arrivals draw from; ``volume`` the expected contacts per (weekday, channel); ``coef``
    the hidden model's coefficients. Derived arrays are built once at construction."""

    seed: int
    intents: tuple[str, ...]
    languages: tuple[str, ...]
    styles: tuple[str, ...]
    start: datetime
    agents: pd.DataFrame
    customers: pd.DataFrame
    intent_share: np.ndarray
    intent_base: np.ndarray
    intent_handle: np.ndarray
    intent_complexity: np.ndarray
    volume: np.ndarray            # (7, n_channels) expected contacts per weekday and channel
    coef: np.ndarray
    occupancy: float
    calibrated_handle_s: tuple[float, ...] = CHANNEL_HANDLE_S
    arrays: AgentArrays = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Derived once, at construction (the dataclass is frozen; nothing changes it after).
        object.__setattr__(self, "arrays", AgentArrays.from_frame(self.agents, intents=self.intents,
                                                                  languages=self.languages, styles=self.styles))

    # ------------------------------------------------------------------ agents and shifts
    @property
    def n_agents(self) -> int:
        return len(self.agents)

    def agents_block(self, *, t_s: float | None = None) -> Agents:
        """All agents as the snapshot contract's :class:`Agents` in this world's vocab
        (``intents``, ``languages``, ``styles``). Load and idle are zero: the caller fills
        them. With ``t_s`` the tenure is the tenure at that time."""
        a = self.arrays
        tenure = np.maximum(a.tenure_days + (0.0 if t_s is None else t_s / DAY_S), 0.0)  # a hire: 0 until day 2
        n = self.n_agents
        return Agents(ids=self.agents["agent_id"].to_numpy(object), speaks=a.speaks, skill=a.skill,
                      tenure_days=tenure, sentiment_handling=a.sentiment_handling, style=a.style,
                      capacity=a.capacity, load=np.zeros((n, len(CHANNELS)), np.int32),
                      idle_s=np.zeros(n))

    def on_shift(self, t_s: float) -> np.ndarray:
        """Bool per agent: working at ``t_s`` seconds after ``start``. A shift that crosses
        midnight belongs to the weekday it started on (off days included)."""
        a = self.arrays
        day = int(np.floor(t_s / DAY_S))
        hour = (t_s - day * DAY_S) / 3600.0
        since = (hour - a.shift_start_h) % 24.0
        started_day = np.where(hour >= a.shift_start_h, day, day - 1)
        wd = (self.start.weekday() + started_day) % 7
        off = a.off[np.arange(self.n_agents), wd]
        return (since < a.shift_len_h) & ~off

    # ------------------------------------------------------------------ arrivals
    def arrival_rate(self, t_s: float) -> np.ndarray:
        """Expected arrivals per second by channel at ``t_s`` (piecewise constant per hour)."""
        day = int(np.floor(t_s / DAY_S))
        h = int((t_s - day * DAY_S) // 3600)
        wd = (self.start.weekday() + day) % 7
        return self.volume[wd] * HOUR_PROFILE[h] / HOUR_PROFILE.sum() / 3600.0

    def sample_arrivals(self, *, rng: np.random.Generator, start_s: float, end_s: float) -> pd.DataFrame:
        """Contacts arriving in [start_s, end_s), sorted by ``arrival_s``: a Poisson process
        by hour, weekday and channel; customers drawn from the pool (repeat customers keep
        their language, style and tier)."""
        if not end_s >= start_s:
            raise InputError([f"end_s: {end_s} is before start_s {start_s}"], what="arrival window")
        times, chans = [], []
        t = start_s
        while t < end_s:
            nxt = min((np.floor(t / 3600.0) + 1) * 3600.0, end_s)
            lam = self.arrival_rate(t) * (nxt - t)
            for c in range(len(CHANNELS)):
                k = rng.poisson(lam[c])
                times.append(rng.uniform(t, nxt, size=k))
                chans.append(np.full(k, c, dtype=np.int8))
            t = nxt
        arr = np.concatenate(times) if times else np.empty(0)
        ch = np.concatenate(chans) if chans else np.empty(0, np.int8)
        order = np.argsort(arr, kind="stable")
        arr, ch = arr[order], ch[order]
        n = len(arr)
        cu = self.customers
        w = cu["weight"].to_numpy()
        cust = np.searchsorted(np.cumsum(w) / w.sum(), rng.random(n), side="right")
        cust = np.minimum(cust, len(w) - 1)
        intent = np.searchsorted(np.cumsum(self.intent_share), rng.random(n) * self.intent_share.sum(),
                                 side="right").clip(0, len(self.intents) - 1)
        complexity = np.clip(rng.beta(2.0, 2.5, n) + self.intent_complexity[intent], 0.0, 1.0)
        urgency = rng.beta(2.0, 5.0, n)
        sentiment = np.clip(cu["sentiment_bias"].to_numpy()[cust] + 0.4 * rng.standard_normal(n), -1, 1)
        lang = cu["language"].to_numpy()[cust]
        style = cu["style"].to_numpy()[cust]
        tier = cu["tier"].to_numpy()[cust]
        patience = rng.exponential(1.0, n) * np.asarray(CHANNEL_PATIENCE_S)[ch]
        us = np.round(arr * 1e6).astype(np.int64)
        ids = np.array([f"c{u:014d}" for u in us], dtype=object)
        dup = np.flatnonzero(np.r_[False, us[1:] == us[:-1]])
        for k in dup:
            ids[k] = f"{ids[k]}-{k}"
        return pd.DataFrame({
            "contact_id": ids, "arrival_s": arr, "channel": np.asarray(CHANNELS, dtype=object)[ch],
            "intent": np.asarray(self.intents, dtype=object)[intent], "language": lang,
            "complexity": complexity, "urgency": urgency, "sentiment": sentiment, "style": style,
            "customer_id": cu["customer_id"].to_numpy()[cust], "customer_tier": tier, "patience_s": patience,
        })

    def contacts_block(self, arrivals: pd.DataFrame) -> Contacts:
        """Encode an arrivals frame (``sample_arrivals`` columns) as :class:`Contacts` in this
        world's vocab; ``waited_s`` is 0."""
        ci = {k: n for n, k in enumerate(CHANNELS)}
        ii = {k: n for n, k in enumerate(self.intents)}
        li = {k: n for n, k in enumerate(self.languages)}
        si = {k: n for n, k in enumerate(self.styles)}
        n = len(arrivals)
        return Contacts(
            ids=arrivals["contact_id"].to_numpy(object),
            channel=[ci[x] for x in arrivals["channel"]], intent=[ii[x] for x in arrivals["intent"]],
            language=[li[x] for x in arrivals["language"]],
            complexity=arrivals["complexity"].to_numpy(float), urgency=arrivals["urgency"].to_numpy(float),
            sentiment=arrivals["sentiment"].to_numpy(float), waited_s=np.zeros(n),
            style=[si.get(x, -1) if isinstance(x, str) else -1 for x in arrivals["style"]],
            customer_id=arrivals["customer_id"].to_numpy(object),
            customer_tier=arrivals["customer_tier"].to_numpy(object),
        )

    # ------------------------------------------------------------------ truth
    def truth(self, *, contacts: Contacts, contact_idx: Any, agent_idx: Any, agent_load: Any = 0,
              t_s: Any = None) -> Truth:
        """Expected outcomes of pairs (contact row, world agent row). ``contacts`` are coded
        in this world's vocab; ``agent_load`` is the agent's other concurrent contacts when the
        pair starts; ``t_s`` (seconds after ``start``, optional) ages the agents' tenure."""
        ci = np.ascontiguousarray(contact_idx, dtype=np.int64)
        ai = np.ascontiguousarray(agent_idx, dtype=np.int64)
        if ci.shape != ai.shape:
            raise InputError([f"contact_idx has shape {ci.shape}, agent_idx {ai.shape}"], what="pairs")
        n = len(ci)
        load = _per_pair(np.asarray(agent_load, dtype=np.float64), n)
        add = np.zeros(n) if t_s is None else _per_pair(np.asarray(t_s, dtype=np.float64) / DAY_S, n)
        a = self.arrays
        p, cs, ht = truth_many(
            self.coef, self.intent_base, self.intent_handle, _CHANNEL_HANDLE,
            contacts.intent, contacts.channel, contacts.complexity, contacts.sentiment,
            contacts.language, contacts.style, a.skill, a.speaks, a.style, a.tenure_days,
            a.sentiment_handling, a.ability, a.speed, ci, ai, load, add)
        return Truth(p_resolved=p, csat_mean=cs, handle_mean_s=ht)

    def draw_outcomes(self, *, rng: np.random.Generator, truth: Truth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(resolved bool, csat 1..5, handle_s) drawn so that their expectations are ``truth``."""
        return draw(rng, p_resolved=truth.p_resolved, csat_mean=truth.csat_mean,
                    handle_mean_s=truth.handle_mean_s, sigma=float(self.coef[COEF_NAMES.index("ht_sigma")]))

    # ------------------------------------------------------------------ load arithmetic
    def load_report(self) -> pd.DataFrame:
        """Per weekday and channel: expected contacts, staffed slot-hours, mean handle time the
        world was calibrated with, and the offered load (workload / staffed capacity)."""
        rows = []
        a = self.arrays
        for wd in range(7):
            working = ~a.off[:, wd]
            for c, ch in enumerate(CHANNELS):
                slot_h = float((a.capacity[working, c] * a.shift_len_h[working]).sum())
                vol = float(self.volume[wd, c])
                h = float(self.calibrated_handle_s[c])
                rows.append(dict(weekday=wd, channel=ch, contacts=vol, slot_hours=slot_h, handle_s=h,
                                 offered_load=vol * h / 3600.0 / slot_h if slot_h else np.inf))
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the world to directory ``path``: world.json, agents.parquet, customers.parquet."""
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        meta = dict(
            schema=WORLD_SCHEMA, seed=self.seed, intents=list(self.intents), languages=list(self.languages),
            styles=list(self.styles), start=self.start.isoformat(), intent_share=self.intent_share.tolist(),
            intent_base=self.intent_base.tolist(), intent_handle=self.intent_handle.tolist(),
            intent_complexity=self.intent_complexity.tolist(), volume=self.volume.tolist(),
            coef=dict(zip(COEF_NAMES, self.coef.tolist())), occupancy=self.occupancy,
            calibrated_handle_s=list(self.calibrated_handle_s),
        )
        (p / "world.json").write_text(json.dumps(meta, indent=1))
        ag = self.agents.copy()
        ag["skills"] = [json.dumps(s, sort_keys=True) for s in ag["skills"]]
        ag["languages"] = [list(x) for x in ag["languages"]]
        ag["off_days"] = [list(map(int, x)) for x in ag["off_days"]]
        ag.to_parquet(p / "agents.parquet", index=False)
        self.customers.to_parquet(p / "customers.parquet", index=False)

    @classmethod
    def load(cls, path: str | Path) -> World:
        """Read a world written by :meth:`save`; raises :class:`InputError` naming what is missing."""
        p = Path(path)
        missing = [f"{p / f}: missing" for f in ("world.json", "agents.parquet", "customers.parquet")
                   if not (p / f).exists()]
        if missing:
            raise InputError(missing, what="world directory")
        meta = json.loads((p / "world.json").read_text())
        if meta.get("schema") != WORLD_SCHEMA:
            raise InputError([f"{p / 'world.json'}: schema {meta.get('schema')!r}, expected {WORLD_SCHEMA!r}"],
                             what="world directory")
        ag = pd.read_parquet(p / "agents.parquet")
        ag["skills"] = [json.loads(s) for s in ag["skills"]]
        ag["languages"] = [list(x) for x in ag["languages"]]
        ag["off_days"] = [list(map(int, x)) for x in ag["off_days"]]
        coef = np.array([meta["coef"][k] for k in COEF_NAMES])
        return cls(seed=int(meta["seed"]), intents=tuple(meta["intents"]), languages=tuple(meta["languages"]),
                   styles=tuple(meta["styles"]), start=datetime.fromisoformat(meta["start"]), agents=ag,
                   customers=pd.read_parquet(p / "customers.parquet"),
                   intent_share=np.array(meta["intent_share"]), intent_base=np.array(meta["intent_base"]),
                   intent_handle=np.array(meta["intent_handle"]),
                   intent_complexity=np.array(meta["intent_complexity"]), volume=np.array(meta["volume"]),
                   coef=coef, occupancy=float(meta["occupancy"]),
                   calibrated_handle_s=tuple(float(x) for x in meta["calibrated_handle_s"]))


# ---------------------------------------------------------------------- generation


def _shift_starts(rng: np.random.Generator, n: int) -> np.ndarray:
    """Greedy shift starts (SHIFT_H long) for ``n`` agents so that the staffing follows
    HOUR_PROFILE: each agent takes the start that covers the largest remaining deficit."""
    target = HOUR_PROFILE / HOUR_PROFILE.sum() * n * SHIFT_H
    have = np.zeros(24)
    starts = np.empty(n, dtype=np.int64)
    cover = np.array([[(h - s) % 24 < SHIFT_H for h in range(24)] for s in range(24)])
    for k in range(n):
        gain = (cover * np.maximum(target - have, 0.0)[None, :]).sum(axis=1)
        gain += 1e-9 * rng.random(24)  # ties broken by a seeded draw, not by hour order
        s = int(np.argmax(gain))
        starts[k] = s
        have += cover[s]
    return starts


def generate_world(*, n_agents: int = 200, seed: int, n_intents: int = 30, occupancy: float = 0.88,
                   n_customers: int | None = None, start: datetime | None = None,
                   coef: np.ndarray | None = None, new_hires: float = 0.0, past_hires: float = 0.0,
                   past_hire_days: float = 14.0) -> World:
    """Draw a synthetic centre. The defaults are the STANDARD CENTRE: 200 agents, 30 intents,
    10-hour shifts following the arrival profile, volume set so that the offered load is
    ``occupancy`` of the staffed capacity on every weekday and channel.

    ``new_hires`` (a share, default 0): that share of the agents joins at the start of day 2
    (``hire_day`` 1, tenure 0 then, so ``tenure_days = -1`` at the world's start; the truth's
    tenure learning curve applies). They are drawn like everyone else (same ability
    population) and chosen by a separate seeded draw, so the other agents and every other
    draw are those of the world without hires. The volume is calibrated on the agents there
    from day 1, so the centre grows on day 2.

    ``past_hires`` (a share, default 0): that share of the agents (among those not newly hired,
    by another separate seeded draw) was hired ``past_hire_days`` before the world's start: its
    tenure is that, so the learning curve still applies, and it works from day 1 (column
    ``past_hire``). A centre that hires has earlier cohorts; their first weeks are in its
    history (:func:`history_world`)."""
    problems = []
    if not isinstance(n_agents, (int, np.integer)) or n_agents < 6:
        problems.append(f"n_agents must be a whole number >= 6, got {n_agents!r}")
    if not isinstance(n_intents, (int, np.integer)) or not 2 <= n_intents <= 200:
        problems.append(f"n_intents must be a whole number in 2..200, got {n_intents!r}")
    if not 0 < occupancy < 1.5:
        problems.append(f"occupancy must be in (0, 1.5), got {occupancy!r}")
    if not 0 <= new_hires < 1:
        problems.append(f"new_hires must be a share in [0, 1), got {new_hires!r}")
    if not 0 <= past_hires < 1 or not 0 <= new_hires + past_hires < 1:
        problems.append(f"past_hires must be a share in [0, 1) with new_hires + past_hires < 1, got {past_hires!r}")
    if not past_hire_days >= 0:
        problems.append(f"past_hire_days must be >= 0, got {past_hire_days!r}")
    if problems:
        raise InputError(problems, what="world parameters")
    rng = np.random.default_rng(seed)
    intents = tuple(INTENT_NAMES[k] if k < len(INTENT_NAMES) else f"intent_{k:03d}" for k in range(n_intents))
    start = start or datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
    start = start - timedelta(days=start.weekday(), hours=start.hour, minutes=start.minute,
                              seconds=start.second, microseconds=start.microsecond)
    share = 1.0 / np.arange(1, n_intents + 1) ** 0.9
    share = share[rng.permutation(n_intents)]
    share /= share.sum()
    intent_base = rng.normal(0.0, 0.3, n_intents)
    intent_handle = np.exp(rng.normal(0.0, 0.25, n_intents))
    intent_handle /= (share * intent_handle).sum()
    intent_cx = rng.uniform(-0.15, 0.15, n_intents)

    agents = _draw_agents(rng, n_agents=n_agents, intents=intents, share=share)
    if new_hires > 0:
        agents = _hire(agents, share=new_hires, rng=np.random.default_rng([int(seed), HIRE_STREAM]))
    if past_hires > 0:
        agents = _past_hire(agents, share=past_hires, age_days=float(past_hire_days),
                            rng=np.random.default_rng([int(seed), PAST_HIRE_STREAM]))
    customers = _draw_customers(rng, n_customers=int(n_customers or max(2000, 1000 * n_agents)))
    draft = World(seed=int(seed), intents=intents, languages=LANGUAGES, styles=STYLES, start=start,
                  agents=agents, customers=customers, intent_share=share, intent_base=intent_base,
                  intent_handle=intent_handle, intent_complexity=intent_cx,
                  volume=np.tile(np.asarray(CHANNEL_MIX) * 1000.0, (7, 1)),  # for the calibration draw only
                  coef=DEFAULT_COEF.copy() if coef is None else np.asarray(coef, dtype=np.float64),
                  occupancy=float(occupancy))
    handle = _calibrate_handle(draft, rng)
    a = draft.arrays
    volume = np.zeros((7, 3))
    for wd in range(7):
        working = ~a.off[:, wd] & (hire_days(agents) == 0)
        slot_s = (a.capacity[working] * a.shift_len_h[working, None]).sum(axis=0) * 3600.0
        volume[wd] = occupancy * slot_s / handle
    return replace(draft, volume=volume, calibrated_handle_s=tuple(float(h) for h in handle))


#: Seed stream of the new-hire draw (apart from every other draw of the world).
HIRE_STREAM = 9_001


def _hire(agents: pd.DataFrame, *, share: float, rng: np.random.Generator) -> pd.DataFrame:
    """Mark ``share`` of the agents (at least one) as hired at the start of day 2."""
    n = max(1, int(round(share * len(agents))))
    ag = agents.copy()
    hired = np.zeros(len(ag), dtype=bool)
    hired[rng.choice(len(ag), size=n, replace=False)] = True
    ag["hire_day"] = np.where(hired, 1, 0).astype(np.int64)
    ag.loc[hired, "tenure_days"] = -1.0
    return ag


#: Seed stream of the past-hire draw.
PAST_HIRE_STREAM = 9_002


def _past_hire(agents: pd.DataFrame, *, share: float, age_days: float, rng: np.random.Generator) -> pd.DataFrame:
    """Mark ``share`` of all agents (at least one), among those working from day 1, as hired
    ``age_days`` before the start (their tenure)."""
    n = max(1, int(round(share * len(agents))))
    ag = agents.copy()
    pool = np.flatnonzero(hire_days(ag) == 0)
    past = np.zeros(len(ag), dtype=bool)
    past[rng.choice(pool, size=min(n, len(pool)), replace=False)] = True
    ag["past_hire"] = past
    ag.loc[past, "tenure_days"] = age_days
    return ag


def past_hires(agents: pd.DataFrame) -> np.ndarray:
    """Bool per agent: hired before the start by :func:`generate_world`'s ``past_hires``."""
    return agents["past_hire"].to_numpy(bool) if "past_hire" in agents.columns else np.zeros(len(agents), bool)


def history_world(world: World, *, days: float) -> World:
    """The world of the ``days`` before its start, for a history that ends where the run
    begins: the agents working on day 1 (no new hire), each with its tenure as it was ``days``
    earlier (clipped at 0: a past hire hired within the window is in it from its start)."""
    ag = world.agents[hire_days(world.agents) == 0].reset_index(drop=True)
    ag = ag.assign(tenure_days=np.maximum(ag["tenure_days"].to_numpy(float) - float(days), 0.0))
    return replace(world, agents=ag)


def draw_tenure(rng: np.random.Generator, *, n: int) -> np.ndarray:
    """Tenure in days of ``n`` tenured agents: log-normal around 400 days, within 5..5000."""
    return np.round(np.exp(rng.normal(np.log(400), 1.0, n)).clip(5, 5000), 1)


def working_on(agents: pd.DataFrame, *, day: int) -> np.ndarray:
    """Bool per agent: on the roster on day index ``day`` (hired by then, not left yet)."""
    on = hire_days(agents) <= day
    if "leave_day" in agents.columns:
        on &= agents["leave_day"].to_numpy(float) > day
    return on


def hire_days(agents: pd.DataFrame) -> np.ndarray:
    """Per agent, the day index (0 = the world's first day) from which it works."""
    if "hire_day" not in agents.columns:
        return np.zeros(len(agents), dtype=np.int64)
    return agents["hire_day"].to_numpy(np.int64)


def _draw_agents(rng: np.random.Generator, *, n_agents: int, intents: tuple[str, ...],
                 share: np.ndarray) -> pd.DataFrame:
    """The agents table: channel groups sized by workload share, shifts following the
    arrival profile, off days, languages, sparse skills, tenure and the hidden ability."""
    n_intents = len(intents)
    work = np.asarray(CHANNEL_MIX) * np.asarray(CHANNEL_HANDLE_S) / np.array([1.0, 2.7, 1.0])
    n_ch = np.floor(work / work.sum() * n_agents).astype(int)
    n_ch[0] += n_agents - n_ch.sum()
    group = np.repeat(np.arange(3), n_ch)
    cap = np.zeros((n_agents, 3), dtype=np.int32)
    cap[group == 0, 0] = 1
    cap[group == 1, 1] = np.where(rng.random((group == 1).sum()) < 0.7, 3, 2)
    cap[group == 2, 2] = 1
    starts = np.empty(n_agents, dtype=np.int64)
    for c in range(3):
        starts[group == c] = _shift_starts(rng, int(n_ch[c]))
    # off days: OFF_SHARE of agents off per weekday
    off_days: list[list[int]] = [[] for _ in range(n_agents)]
    for wd, s in enumerate(OFF_SHARE):
        for j in rng.choice(n_agents, size=int(round(s * n_agents)), replace=False):
            off_days[j].append(wd)
    # languages: every agent speaks en or, for a few, another language
    speaks = rng.random((n_agents, len(LANGUAGES))) < np.array([0.92, 0.25, 0.15, 0.10])
    speaks[~speaks.any(axis=1), 0] = True
    for k in range(len(LANGUAGES)):  # each language spoken in each channel group
        for c in range(3):
            idx = np.flatnonzero(group == c)
            if not speaks[idx, k].any():
                speaks[rng.choice(idx), k] = True
    # skills: sparse, popular intents more often, proficiency 0.2..1
    skills = []
    n_sk = rng.integers(max(2, n_intents // 5), max(3, n_intents // 2) + 1, n_agents)
    p_int = np.sqrt(share) / np.sqrt(share).sum()
    for j in range(n_agents):
        ks = rng.choice(n_intents, size=min(n_sk[j], n_intents), replace=False, p=p_int)
        skills.append({intents[k]: round(float(0.2 + 0.8 * rng.beta(2.5, 1.8)), 3) for k in sorted(ks)})
    for c in range(3):  # every intent covered by several agents of each channel group
        idx = np.flatnonzero(group == c)
        for name in intents:
            have = [j for j in idx if name in skills[j]]
            for j in rng.choice(idx, size=max(0, min(3, len(idx)) - len(have)), replace=False):
                skills[j][name] = round(float(0.3 + 0.6 * rng.random()), 3)
    tenure = draw_tenure(rng, n=n_agents)
    ability = rng.normal(0.0, 0.45, n_agents)
    agents = pd.DataFrame({
        "agent_id": [f"a{j:04d}" for j in range(n_agents)],
        "languages": [[LANGUAGES[k] for k in np.flatnonzero(speaks[j])] for j in range(n_agents)],
        "skills": skills,
        "tenure_days": tenure,
        "sentiment_handling": np.round(rng.beta(3, 3, n_agents), 3),
        "style": np.asarray(STYLES, dtype=object)[rng.integers(0, len(STYLES), n_agents)],
        "capacity_voice": cap[:, 0], "capacity_chat": cap[:, 1], "capacity_email": cap[:, 2],
        "shift_start_h": starts.astype(float), "shift_end_h": ((starts + SHIFT_H) % 24).astype(float),
        "off_days": off_days,
        "ability": ability,
        "speed": -0.3 * ability + rng.normal(0.0, 0.12, n_agents),
    })
    return agents


def _draw_customers(rng: np.random.Generator, *, n_customers: int) -> pd.DataFrame:
    """A customer pool with heavy-tailed contact rates (so repeat customers), each with a
    fixed language, style and tier."""
    n_cust = n_customers
    lang = np.asarray(LANGUAGES, dtype=object)[rng.choice(len(LANGUAGES), n_cust, p=LANGUAGE_SHARE)]
    customers = pd.DataFrame({
        "customer_id": [f"u{k:07d}" for k in range(n_cust)],
        "language": lang,
        "style": np.asarray(STYLES, dtype=object)[rng.choice(len(STYLES), n_cust, p=[0.4, 0.35, 0.25])],
        "tier": np.where(rng.random(n_cust) < 0.15, TIERS[1], TIERS[0]).astype(object),
        "sentiment_bias": rng.normal(-0.05, 0.25, n_cust),
        "weight": rng.lognormal(0.0, 1.2, n_cust),
    })
    return customers


def _calibrate_handle(world: World, rng: np.random.Generator, n: int = 10_000) -> np.ndarray:
    """Mean handle time per channel when contacts go to a skilled agent of their channel chosen
    in proportion to proficiency (close to the logging policy): the figure the volume uses."""
    sub = np.random.default_rng(int(rng.integers(2**63)))
    df = world.sample_arrivals(rng=sub, start_s=0.0, end_s=7 * DAY_S)
    df = df.iloc[sub.permutation(len(df))[:n]].reset_index(drop=True)
    cs = world.contacts_block(df)
    a = world.arrays
    agent = np.empty(len(df), dtype=np.int64)
    for i in range(len(df)):
        ok = (a.capacity[:, cs.channel[i]] > 0) & a.speaks[:, cs.language[i]]
        w = np.exp(4.0 * a.skill[:, cs.intent[i]]) * ok * (a.skill[:, cs.intent[i]] > 0)
        if w.sum() <= 0:
            w = ok.astype(float) + 1e-12
        agent[i] = sub.choice(len(w), p=w / w.sum())
    others = (a.capacity[agent, cs.channel] - 1) * world.occupancy  # chat concurrency
    tr = world.truth(contacts=cs, contact_idx=np.arange(len(df)), agent_idx=agent, agent_load=others)
    out = np.array(CHANNEL_HANDLE_S, dtype=float)
    for c in range(3):
        m = cs.channel == c
        if m.any():
            out[c] = float(tr.handle_mean_s[m].mean())
    return out


def generate_history(world: World, *, days: int, seed: int, progress: bool = False) -> pd.DataFrame:
    """A history of ``days`` days routed by the logging policy (see assign.world.synth_history)."""
    from assign.world.synth_history import generate_history as _gen

    return _gen(world, days=days, seed=seed, progress=progress)


def _per_pair(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` (a scalar or one value per pair) as a contiguous float64 array of ``n`` values."""
    if x.shape == (n,):
        return np.ascontiguousarray(x)
    if x.ndim == 0:
        return np.full(n, x)
    return np.ascontiguousarray(np.broadcast_to(x, (n,)))
