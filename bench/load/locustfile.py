"""The citizen journey for locust (issue 8): browse, read, type with the similar-ideas panel, submit, vote.

Started by bench/load/run.py, which seeds the database and writes the JSON file named by
IDEAFORGE_LOAD_DATA (challenge id, idea ids, citizens' API tokens, texts to type). Each request is named
"<step> <METHOD> <route>" so the driver can report every step separately.

    locust -f bench/load/locustfile.py --headless -u 50 -r 10 --run-time 70s --host http://127.0.0.1:PORT

Environment:
    IDEAFORGE_LOAD_DATA   the JSON file (required)
    IDEAFORGE_LOAD_THINK  "min,max" seconds between steps (default "1,3"; "0,0" for the capacity run)
    IDEAFORGE_LOAD_TYPING "min,max" seconds between two similar-ideas calls while typing (default "0.5,1.5")
"""

from __future__ import annotations

import itertools
import json
import os
import random
from pathlib import Path
from typing import Any

import gevent
from locust import HttpUser, between, task

DATA: dict[str, Any] = json.loads(Path(os.environ["IDEAFORGE_LOAD_DATA"]).read_text())
THINK = [float(x) for x in os.environ.get("IDEAFORGE_LOAD_THINK", "1,3").split(",")]
TYPING = [float(x) for x in os.environ.get("IDEAFORGE_LOAD_TYPING", "0.5,1.5").split(",")]
TIMEOUT = 60.0
SUBMIT_SHARE = 1 / 3  # of typing sessions end with a submission; the others leave (or support an idea)
RETRACT_SHARE = 0.15  # of votes are taken back right after
_citizens = itertools.count()


class Citizen(HttpUser):
    wait_time = between(THINK[0], THINK[1])

    def on_start(self) -> None:
        n = next(_citizens)
        self.citizen = n % len(DATA["tokens"])
        self.cid = DATA["challenge_id"]
        self.ideas: list[int] = DATA["idea_ids"]
        self.rng = random.Random(n)  # noqa: S311  # load-test choices, not secrets
        # One browser per citizen: the vote-burst check counts voters per (IP, User-Agent), and all the
        # load comes from 127.0.0.1.
        self.ua = {"user-agent": f"ideaforge-load citizen-{self.citizen}", "accept-language": "en"}
        self.api = self.ua | {"authorization": f"Bearer {DATA['tokens'][self.citizen]}"}

    @task(3)
    def browse(self) -> None:
        self.client.get("/challenges/", headers=self.ua, name="browse GET /challenges/", timeout=TIMEOUT)

    @task(5)
    def read(self) -> None:
        cid = self.cid
        self.client.get(f"/challenges/{cid}", headers=self.ua, name="read GET /challenges/[id]",
                        timeout=TIMEOUT)  # fmt: skip
        self.client.get(f"/challenges/{cid}/ideas?sort=top", headers=self.ua,
                        name="read GET /challenges/[id]/ideas?sort=top", timeout=TIMEOUT)  # fmt: skip
        self.client.get(f"/ideas/{self.rng.choice(self.ideas)}", headers=self.ua, name="read GET /ideas/[id]",
                        timeout=TIMEOUT)  # fmt: skip

    @task(3)
    def type_and_submit(self) -> None:
        """The debounced panel: 2 or 3 calls as the text grows, then sometimes the submission."""
        title, body, language = self.rng.choice(DATA["texts"])
        words = body.split()
        cuts = [0.5, 1.0] if self.rng.random() < 0.5 else [0.35, 0.7, 1.0]
        for i, cut in enumerate(cuts):
            if i:
                self._pause(TYPING)
            text = f"{title}\n{' '.join(words[: max(2, round(cut * len(words)))])}"
            self.client.post(f"/api/v1/challenges/{self.cid}/similar", json={"text": text, "exclude": []},
                             headers=self.api, name="type POST /api/v1/challenges/[id]/similar",
                             timeout=TIMEOUT)  # fmt: skip
        if self.rng.random() < SUBMIT_SHARE:
            self._pause(TYPING)
            suffix = f" (load test, citizen {self.citizen}, {self.rng.randrange(10**9)})"
            self.client.post(f"/api/v1/challenges/{self.cid}/ideas",
                             json={"title": title[:100], "body": body + suffix, "language": language},
                             headers=self.api, name="submit POST /api/v1/challenges/[id]/ideas",
                             timeout=TIMEOUT)  # fmt: skip

    @task(4)
    def vote(self) -> None:
        idea = self.rng.choice(self.ideas)
        self.client.put(f"/api/v1/ideas/{idea}/vote", headers=self.api, name="vote PUT /api/v1/ideas/[id]/vote",
                        timeout=TIMEOUT)  # fmt: skip
        if self.rng.random() < RETRACT_SHARE:
            self.client.delete(f"/api/v1/ideas/{idea}/vote", headers=self.api,
                               name="vote DELETE /api/v1/ideas/[id]/vote", timeout=TIMEOUT)  # fmt: skip

    def _pause(self, bounds: list[float]) -> None:
        if bounds[1] > 0:
            gevent.sleep(self.rng.uniform(bounds[0], bounds[1]))
