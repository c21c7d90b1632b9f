"""The hidden outcome model of the synthetic centre: one numba implementation, used by
:meth:`World.truth` and by the history generator, so the truth columns and the function that
gives the truth for any pair can never disagree.

Coefficients live in a float64 vector (``COEF_NAMES`` gives the order) stored with the
world, so a world can be re-created with other effect sizes.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Order of the coefficient vector handed to the kernels.
COEF_NAMES: tuple[str, ...] = (
    "res_base",           # 0  intercept of the resolution logit
    "res_prof",           # 1  proficiency on the intent
    "res_prof_x_cx",      # 2  proficiency x complexity (skill matters more on hard contacts)
    "res_cx",             # 3  complexity
    "res_unskilled",      # 4  agent has no skill for the intent
    "res_no_language",    # 5  agent does not speak the contact's language
    "res_style",          # 6  communication style matches
    "res_neg",            # 7  negative sentiment
    "res_handling_x_neg", # 8  sentiment handling x negative sentiment
    "res_new_hire",       # 9  learning curve: penalty * exp(-tenure / tenure_scale)
    "tenure_scale_days",  # 10
    "res_load",           # 11 per other concurrent contact
    "csat_base",          # 12 intercept of the CSAT logit
    "csat_res",           # 13 weight of the resolution logit in the CSAT logit
    "csat_style",         # 14
    "csat_neg",           # 15
    "csat_handling_x_neg",# 16
    "csat_ability",       # 17
    "ht_cx",              # 18 log handle time per unit complexity
    "ht_prof",            # 19 log handle time per unit proficiency
    "ht_new_hire",        # 20
    "ht_no_language",     # 21
    "ht_load",            # 22
    "ht_sigma",           # 23 log-normal sigma of the handle time draw
)

DEFAULT_COEF = np.array([
    0.80, 1.2, 2.6, -2.4, -1.4, -1.8, 0.45, -1.3, 2.0, -0.9, 60.0, -0.22,
    -0.2, 0.55, 0.5, -0.8, 0.9, 0.25,
    0.5, -0.6, 0.35, 0.25, 0.1, 0.55,
], dtype=np.float64)
assert len(DEFAULT_COEF) == len(COEF_NAMES)


@njit(cache=True)
def truth_one(coef, intent_base, intent_handle, channel_handle, intent, channel, complexity,
              sentiment, speaks, style_match, prof, tenure, handling, ability, speed, load):
    """Expected outcomes of one contact-agent pair: (p_resolved, csat_mean, handle_mean_s)."""
    neg = max(-sentiment, 0.0)
    new_hire = math.exp(-tenure / coef[10])
    z = (coef[0] + intent_base[intent] + coef[1] * prof + coef[2] * prof * complexity
         + coef[3] * complexity + coef[6] * style_match + coef[7] * neg + coef[8] * handling * neg
         + coef[9] * new_hire + ability + coef[11] * max(load, 0.0))
    if prof <= 0.0:
        z += coef[4]
    if not speaks:
        z += coef[5]
    p = 1.0 / (1.0 + math.exp(-z))
    zc = (coef[12] + coef[13] * z + coef[14] * style_match + coef[15] * neg
          + coef[16] * handling * neg + coef[17] * ability)
    csat = 1.0 + 4.0 / (1.0 + math.exp(-zc))
    lh = (coef[18] * (complexity - 0.45) + coef[19] * (prof - 0.6) + coef[20] * new_hire
          + coef[22] * max(load, 0.0) + speed)
    if not speaks:
        lh += coef[21]
    handle = channel_handle[channel] * intent_handle[intent] * math.exp(lh)
    return p, csat, handle


@njit(cache=True)
def truth_many(coef, intent_base, intent_handle, channel_handle, c_intent, c_channel, c_complexity,
               c_sentiment, c_language, c_style, a_skill, a_speaks, a_style, a_tenure, a_handling,
               a_ability, a_speed, ci, ai, load, tenure_add):
    """Vectorised :func:`truth_one` over pairs (ci[k], ai[k])."""
    n = len(ci)
    p = np.empty(n)
    cs = np.empty(n)
    ht = np.empty(n)
    for k in range(n):
        i = ci[k]
        j = ai[k]
        it = c_intent[i]
        sm = 1.0 if (c_style[i] >= 0 and c_style[i] == a_style[j]) else 0.0
        p[k], cs[k], ht[k] = truth_one(
            coef, intent_base, intent_handle, channel_handle, it, c_channel[i], c_complexity[i],
            c_sentiment[i], a_speaks[j, c_language[i]], sm, a_skill[j, it], a_tenure[j] + tenure_add[k],
            a_handling[j], a_ability[j], a_speed[j], load[k])
    return p, cs, ht


def draw(rng: np.random.Generator, *, p_resolved: np.ndarray, csat_mean: np.ndarray,
         handle_mean_s: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcome draws whose expectations are exactly the truth: Bernoulli resolution, CSAT =
    1 + Binomial(4, (mean-1)/4), log-normal handle time with the given mean."""
    n = len(p_resolved)
    resolved = rng.random(n) < p_resolved
    csat = 1.0 + rng.binomial(4, np.clip((csat_mean - 1.0) / 4.0, 0.0, 1.0)).astype(np.float64)
    handle = handle_mean_s * np.exp(sigma * rng.standard_normal(n) - 0.5 * sigma * sigma)
    return resolved, csat, handle
