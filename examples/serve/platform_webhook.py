"""A contact-centre platform's side of window mode, as a webhook handler would play it.

    ASSIGN_SERVE_TOKEN=... assign serve --window-s 0.5 &
    ASSIGN_SERVE_TOKEN=... python examples/serve/platform_webhook.py [--url http://127.0.0.1:8000]

A platform calls its routing webhook when a task is created (Twilio TaskRouter's assignment
callback, an Amazon Connect Lambda, a Genesys flow), must answer within its timeout, and
later reports what happened. This script plays that platform for a synthetic half minute:

* agents log in (``PUT /v1/agents/{id}``) with their skills and capacity;
* each new task becomes ``POST /v1/contacts`` with a ``timeout_ms`` below the platform's own
  callback limit; an agent in the answer becomes the platform's "assign to agent"
  instruction, "queued" becomes "keep in queue" and the task is followed with
  ``GET /v1/contacts/{id}?wait_ms=``;
* a customer who hangs up while queued is ``DELETE``d (withdrawn); a finished conversation is
  ``DELETE``d too, which frees the agent's slot for the next window.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random

import httpx

CALLBACK_LIMIT_MS = 3000          # e.g. Amazon Connect's default Lambda timeout
INTENTS = ("billing", "card_lost", "loan", "fraud")


def instruction(decision: dict) -> dict:
    """The webhook's answer to the platform for one routing decision."""
    if decision["status"] == "assigned":
        return {"instruction": "accept", "worker": decision["agent_id"], "channel": decision["channel"]}
    return {"instruction": "keep_in_queue", "position": decision.get("position")}


async def log_in_agents(client: httpx.AsyncClient, n: int, rng: random.Random) -> None:
    for j in range(n):
        agent = {"languages": ["en"] + (["es"] if rng.random() < 0.3 else []),
                 "skills": {i: round(rng.uniform(0.3, 1.0), 2) for i in rng.sample(INTENTS, 2)},
                 "capacity": {"voice": 1, "chat": rng.randint(1, 3)}, "tenure_days": rng.randint(10, 2000)}
        r = await client.put(f"/v1/agents/agent-{j}", json=agent)
        r.raise_for_status()


async def one_task(client: httpx.AsyncClient, k: int, rng: random.Random) -> str:
    task = {"contact_id": f"task-{k}", "channel": rng.choice(["voice", "chat"]), "intent": rng.choice(INTENTS),
            "language": "en", "urgency": round(rng.random(), 2), "customer_id": f"cust-{rng.randint(1, 500)}"}
    r = await client.post("/v1/contacts", json=task, params={"timeout_ms": CALLBACK_LIMIT_MS - 500})
    r.raise_for_status()
    decision = r.json()
    print(f"{task['contact_id']}: {instruction(decision)}")
    patience = rng.expovariate(1 / 20.0)
    while decision["status"] == "queued":
        if patience <= 0:  # the customer hangs up
            await client.delete(f"/v1/contacts/{task['contact_id']}")
            return "abandoned"
        r = await client.get(f"/v1/contacts/{task['contact_id']}", params={"wait_ms": 1000})
        decision, patience = r.json(), patience - 1.0
    if decision["status"] != "assigned":
        return decision["status"]
    await asyncio.sleep(rng.expovariate(1 / 4.0))        # the conversation
    await client.delete(f"/v1/contacts/{task['contact_id']}")  # wrap-up done: the slot is free again
    return "handled"


async def main(url: str, *, agents: int, rate: float, seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {os.environ['ASSIGN_SERVE_TOKEN']}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10.0) as client:
        await log_in_agents(client, agents, rng)
        tasks, t = [], 0.0
        while t < seconds:
            gap = rng.expovariate(rate)
            await asyncio.sleep(gap)
            t += gap
            tasks.append(asyncio.create_task(one_task(client, len(tasks), rng)))
        outcomes = await asyncio.gather(*tasks)
    print({o: outcomes.count(o) for o in sorted(set(outcomes))})


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Play a contact-centre platform against `assign serve --window-s`.")
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--rate", type=float, default=5.0, help="New tasks per second.")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    asyncio.run(main(a.url, agents=a.agents, rate=a.rate, seconds=a.seconds, seed=a.seed))
