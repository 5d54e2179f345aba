"""Two rounds of the loop on the demo, labelled by an automatic annotator (issue 20; run by bench/loop_real.sh).

Subcommands, in the order the shell script calls them:

- ``split DATA OUT_DIR``: the HH dev pairs in two halves by a stable hash of each line: ``loop.jsonl`` (imported
  into the demo, the loop's data) and ``oracle.jsonl`` (the oracle project's, never seen by the loop).
- ``setup``: the ``oracle`` project (the demo's three objectives) and the ``auto-annotator`` user, an annotator
  of the demo. Not a person: every label it submits comes from the oracle reward model.
- ``drive``: everything a researcher and an annotator would do, over the REST API of the running demo (web and
  both Celery workers): the loop's settings (PATCH), a bootstrap generation from the base policy, then the
  automatic annotator labels the new comparisons; the ``retrain_every``-th label starts round 1 (snapshot →
  reward run → PPO → generation, chained by the app), whose generated pairs it labels to start round 2. The
  database is only read, for the report: stage times, each round's fixed-set accuracy, PPO's held-out reward
  before → after, and the common ruler: the oracle's normalized reward of each round's generated responses.
"""

import argparse
import gzip
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

ANNOTATOR = "auto-annotator"
# Oracle margins (normalized reward of A minus B) below TIE are ties; above each bound the strength grows.
TIE = 0.1
STRENGTH_BOUNDS = (0.5, 1.0)  # below 0.5: slightly (1), below 1.0: clearly (2), else strongly (3)


def log(message: str) -> None:
    print(f"[loop {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- split ---------------------------------------------------------------------------------------------------


def split(data: Path, out_dir: Path) -> None:
    """Each line to the loop's half or the oracle's by the parity of its sha256: stable across runs."""
    halves = {"loop": [], "oracle": []}
    with gzip.open(data, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                half = "oracle" if hashlib.sha256(line.encode()).digest()[0] % 2 else "loop"
                halves[half].append(line if line.endswith("\n") else line + "\n")
    for half, rows in halves.items():
        (out_dir / f"{half}.jsonl").write_text("".join(rows), encoding="utf-8")
        log(f"{half}: {len(rows)} pairs")


# --- setup (Django) ------------------------------------------------------------------------------------------


def django_setup() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def setup(password: str) -> None:
    """The oracle project (the demo's objectives, made by the demo admin) and the automatic annotator."""
    django_setup()
    from django.contrib.auth import get_user_model

    from annotate_app.models import Project, Role
    from annotate_app.services.projects import membership_set, project_create

    demo = Project.objects.get(slug="demo")
    admin = get_user_model().objects.get(username="admin")
    objectives = [{"key": o.key, "name": o.name, "guideline": o.guideline} for o in demo.objectives.order_by("order")]
    if not Project.objects.filter(slug="oracle").exists():
        project_create(name="Oracle (automatic annotator's reward model)", slug="oracle", objectives=objectives,
                       created_by=admin, description="Trained on the HH half the loop never sees.")
    user, created = get_user_model().objects.get_or_create(
        username=ANNOTATOR, defaults={"first_name": "Automatic annotator", "last_name": "(oracle reward model)"})
    if created:
        user.set_password(password)
        user.save()
    membership_set(project=demo, user=user, role=Role.ANNOTATOR)
    log(f"oracle project and user {ANNOTATOR} (an automatic annotator, not a person) ready")


# --- the REST client -----------------------------------------------------------------------------------------


class Api:
    def __init__(self, base: str, username: str, password: str):
        import requests

        self.base, self.session = base.rstrip("/") + "/api/v1/", requests.Session()
        answer = self.session.post(self.base + "auth/token/", data={"username": username, "password": password})
        answer.raise_for_status()
        self.session.headers["Authorization"] = f"Token {answer.json()['token']}"

    def call(self, method: str, path: str, body: dict | None = None, ok=(200, 201, 202, 204)):
        answer = self.session.request(method, self.base + path, json=body, timeout=120)
        if answer.status_code not in ok:
            raise SystemExit(f"{method} {path}: {answer.status_code} {answer.text[:2000]}")
        return answer.json() if answer.status_code != 204 and answer.content else None


# --- the automatic annotator ---------------------------------------------------------------------------------


class Oracle:
    """The held-out reward model as an annotator: a judgment per objective from the sign and size of its
    normalized reward difference (A − B as shown)."""

    def __init__(self, model_dir: Path):
        from rm_worker.training.model import RewardModel

        self.model = RewardModel.from_pretrained(model_dir, device="cpu")
        self.objectives = list(self.model.objectives)

    def rewards(self, prompts: list, responses: list[str]) -> list[dict[str, float]]:
        return self.model.score_batch(prompts, responses, normalized=True, batch_size=16)

    def judgments(self, prompt, text_a: str, text_b: str) -> dict:
        a, b = self.rewards([prompt, prompt], [text_a, text_b])
        out = {}
        for objective in self.objectives:
            margin = a[objective] - b[objective]
            if abs(margin) < TIE:
                out[objective] = {"choice": "tie"}
                continue
            strength = 1 + sum(abs(margin) >= bound for bound in STRENGTH_BOUNDS)
            out[objective] = {"choice": "A" if margin > 0 else "B", "strength": strength,
                              "rationale": f"automatic annotator (oracle reward model): margin {margin:+.2f}"}
        return out


def generated_comparison_ids(project_id: int) -> set[int]:
    from annotate_app.models import Comparison, Generation

    batches = Generation.objects.filter(project_id=project_id).exclude(import_batch=None).values("import_batch")
    return set(Comparison.objects.filter(import_batch__in=batches).values_list("id", flat=True))


def annotate(api: Api, oracle: Oracle | None, project_id: int, *, skip_all: bool = False) -> dict:
    """Take the automatic annotator's tasks until none is left: label each generated comparison with the oracle's
    judgments, skip the rest (the demo's and the imported HH pairs, already labelled). Returns counts."""
    from annotate_app.models import Task

    generated = generated_comparison_ids(project_id)
    counts = {"labelled": 0, "skipped": 0, "ties": 0, "judgments": 0, "seconds": 0.0}
    started = time.monotonic()
    while True:
        task = api.call("GET", "projects/demo/tasks/next")
        if task is None:
            break
        comparison_id = Task.objects.values_list("comparison_id", flat=True).get(pk=task["id"])
        if skip_all or comparison_id not in generated:
            api.call("POST", f"tasks/{task['id']}/skip")
            counts["skipped"] += 1
            continue
        texts = [response["text"] for response in task["responses"]]
        judgments = oracle.judgments(task["prompt"], *texts)
        api.call("POST", f"tasks/{task['id']}/submit", {"judgments": judgments})
        counts["labelled"] += 1
        counts["judgments"] += len(judgments)
        counts["ties"] += sum(j["choice"] == "tie" for j in judgments.values())
    counts["seconds"] = round(time.monotonic() - started, 1)
    return counts


# --- waiting ------------------------------------------------------------------------------------------------


def wait_for(what: str, check, timeout: float, every: float = 5.0):
    """Poll ``check()`` until it returns something other than None; exit loudly after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value is not None:
            return value
        time.sleep(every)
    raise SystemExit(f"TIMEOUT after {timeout:.0f} s waiting for {what}")


def finished(run) -> bool:
    run.refresh_from_db()
    if run.status in ("failed", "cancelled"):
        raise SystemExit(f"{type(run).__name__} {run.pk} {run.status}: {run.error}")
    return run.status == "succeeded"


def wait_round(number: int, project_id: int, timeout: float):
    """Wait for round ``number`` to exist and for its reward run, PPO run and generation to succeed."""
    from annotate_app.models import Round

    current = wait_for(f"round {number} to start", lambda: Round.objects.filter(
        project_id=project_id, number=number).first(), timeout=300)
    log(f"round {number} started ({current.trigger}): reward run {current.reward_run_id}")
    deadline = time.monotonic() + timeout
    for field in ("reward_run", "policy_run", "generation"):
        def step(field=field):
            current.refresh_from_db()
            if current.note:
                raise SystemExit(f"round {number}: {current.note}")
            run = getattr(current, field)
            return run if run is not None and finished(run) else None

        run = wait_for(f"round {number}'s {field}", step, timeout=max(1, deadline - time.monotonic()))
        log(f"round {number}: {field} {run.pk} succeeded ({seconds(run.started_at, run.finished_at):.0f} s); "
            f"load {os.getloadavg()[0]:.2f}")
    return current


def share(value: dict) -> str:
    """A report's share ``{"rate", "low", "high", "n"}`` as text."""
    if value.get("rate") is None:
        return f"— (n={value.get('n')})"
    return f"{value['rate']:.3f} [{value['low']:.3f}, {value['high']:.3f}] (n={value['n']})"


def seconds(start, end) -> float:
    return (end - start).total_seconds() if start and end else float("nan")


# --- the common ruler ----------------------------------------------------------------------------------------


def ruler(oracle: Oracle, generation) -> dict:
    """The oracle's normalized reward per objective of a generation's responses: per prompt the mean of its two
    responses, then mean and standard error over prompts."""
    from annotate_app.models import Comparison

    rows = list(Comparison.objects.filter(import_batch_id=generation.import_batch_id).values_list(
        "prompt", "response_a", "response_b"))
    rewards = oracle.rewards([p for p, _, _ in rows for _ in (0, 1)], [r for _, a, b in rows for r in (a, b)])
    by_prompt = {repr(prompt): {o: (rewards[2 * i][o] + rewards[2 * i + 1][o]) / 2 for o in oracle.objectives}
                 for i, (prompt, _, _) in enumerate(rows)}
    return {"n": len(rows), "by_prompt": by_prompt,
            "mean": {o: mean_se([v[o] for v in by_prompt.values()]) for o in oracle.objectives}}


def mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else float("nan")
    return mean, math.sqrt(var / n)


def difference(base: dict, other: dict, objective: str) -> tuple[float, float]:
    """Mean of ``other`` minus mean of ``base`` and its standard error (independent prompt draws: each round's
    generation draws its prompts with its own seed)."""
    (m0, s0), (m1, s1) = base["mean"][objective], other["mean"][objective]
    return m1 - m0, math.sqrt(s0 ** 2 + s1 ** 2)


# --- drive ---------------------------------------------------------------------------------------------------


def drive(args) -> None:
    django_setup()
    from annotate_app.models import Generation, Project, RewardModelRun
    from annotate_app.services.runs import run_dir
    from rm_worker.training.trainer import MODEL_DIR

    demo = Project.objects.get(slug="demo")
    oracle_run = RewardModelRun.objects.get(pk=args.oracle_run)
    oracle = Oracle(run_dir(oracle_run) / MODEL_DIR)
    admin = Api(args.url, "admin", args.admin_password)
    annotator = Api(args.url, ANNOTATOR, args.annotator_password)
    timings = {"started": time.time(), "load": [os.getloadavg()]}

    log("automatic annotator: skipping the comparisons already labelled by import (the demo's and HH's)")
    walk = annotate(annotator, None, demo.pk, skip_all=True)
    log(f"skipped {walk['skipped']} in {walk['seconds']} s")

    settings = {
        "retrain_every": args.pairs,
        "retrain_config": {"mode": "frozen"},
        "repolicy_config": {"steps": args.steps, "batch_size": 4, "mini_batch_size": 2, "max_new_tokens": 48,
                            "eval_max_prompts": 16},
        "regenerate_config": {"n_prompts": args.pairs, "samples": args.samples, "pairing": "uncertain",
                              "max_new_tokens": 48},
    }
    admin.call("PATCH", "projects/demo/", settings)
    log(f"loop settings: {json.dumps(settings)}")

    bootstrap = admin.call("POST", "projects/demo/generations/", {"config": {
        "n_prompts": args.pairs, "samples": args.samples, "pairing": "random", "max_new_tokens": 48}})
    generation = Generation.objects.get(pk=bootstrap["id"])
    wait_for("the bootstrap generation", lambda: generation if finished(generation) else None, timeout=1800)
    log(f"bootstrap generation {generation.pk}: {generation.created_count} new pairs "
        f"({seconds(generation.started_at, generation.finished_at):.0f} s)")
    state = {"oracle_run": oracle_run.pk, "walk": walk, "labels": [], "timings": timings,
             "generations": [generation.pk], "rounds": []}
    for number in (1, 2):
        counts = annotate(annotator, oracle, demo.pk)
        state["labels"].append(counts)
        log(f"automatic annotator labelled {counts['labelled']} ({counts['ties']}/{counts['judgments']} judgments "
            f"ties) in {counts['seconds']} s")
        if counts["labelled"] < args.pairs:
            raise SystemExit(f"{counts['labelled']} labels < retrain_every {args.pairs}: round {number} cannot start")
        current = wait_round(number, demo.pk, timeout=args.round_timeout)
        state["rounds"].append(current.pk)
        state["generations"].append(current.generation_id)
        timings["load"].append(os.getloadavg())
        timings["ended"] = time.time()
        Path(args.state).write_text(json.dumps(state), encoding="utf-8")
    report(oracle, state, args.out)


def report_command(args) -> None:
    """The report again, from the state file ``drive`` wrote and the database."""
    django_setup()
    from annotate_app.models import RewardModelRun
    from annotate_app.services.runs import run_dir
    from rm_worker.training.trainer import MODEL_DIR

    state = json.loads(Path(args.state).read_text(encoding="utf-8"))
    oracle = Oracle(run_dir(RewardModelRun.objects.get(pk=state["oracle_run"])) / MODEL_DIR)
    report(oracle, state, args.out)


def report(oracle: Oracle, state: dict, out_path: Path | None) -> None:
    from annotate_app.models import Generation, RewardModelRun, Round

    objectives = oracle.objectives
    oracle_run = RewardModelRun.objects.get(pk=state["oracle_run"])
    walk, labels, timings = state["walk"], state["labels"], state["timings"]
    rounds = [Round.objects.select_related("reward_run", "policy_run", "generation", "snapshot").get(pk=pk)
              for pk in state["rounds"]]
    generations = [Generation.objects.get(pk=pk) for pk in state["generations"]]
    rulers = [ruler(oracle, g) for g in generations]
    out = [f"Automatic annotator: user `{ANNOTATOR}`, labels from the oracle reward model (run {oracle_run.pk}, "
           f"frozen MiniLM on the HH half the loop never sees + the demo's 36); not a person.", "",
           "Oracle held-out accuracy: " + ", ".join(
               f"{o} {share(v['accuracy'])}" for o, v in (oracle_run.report or {}).get("objectives", {}).items()), "",
           "Seconds per stage (worker start → end; queue waits apart):", "",
           "| round | labels (auto) | snapshot | reward run | RM end → PPO start (fixed-set eval, queue) | PPO run | "
           "generation | round wall (round start → generation end) |",
           "|---:|---|---:|---:|---:|---:|---:|---:|"]
    g0 = generations[0]
    out.append(f"| 0 (bootstrap, base policy) | — | — | — | — | — | {seconds(g0.started_at, g0.finished_at):.0f} | — |")
    for current, counts in zip(rounds, labels):
        rm, ppo, gen, snap = current.reward_run, current.policy_run, current.generation, current.snapshot
        out.append(
            f"| {current.number} | {counts['labelled']} in {counts['seconds']:.0f} s ({counts['ties']} of "
            f"{counts['judgments']} judgments ties) | {seconds(snap.created_at, snap.finished_at):.0f} | "
            f"{seconds(rm.started_at, rm.finished_at):.0f} | {seconds(rm.finished_at, ppo.started_at):.0f} | "
            f"{seconds(ppo.started_at, ppo.finished_at):.0f} ({ppo.total_steps} steps) | "
            f"{seconds(gen.started_at, gen.finished_at):.0f} | {seconds(current.created_at, gen.finished_at):.0f} |")
    # The Round row keeps the set's size, not each objective's: those are round 1's held-out pairs per head.
    fixed = (rounds[0].reward_run.report or {}).get("objectives", {}) if rounds else {}
    out += ["", "Reward model per round: pairwise accuracy on the fixed evaluation set (round 1's held-out pairs; "
            "pairs per objective: " + ", ".join(f"{o} {fixed.get(o, {}).get('accuracy', {}).get('n')}"
                                                 for o in objectives) + "):",
            "", "| round | reward run | pairs | " + " | ".join(objectives) + " |",
            "|---:|---:|---:|" + "---:|" * len(objectives)]
    for current in rounds:
        acc = current.eval_accuracy or {}
        out.append(f"| {current.number} | {current.reward_run_id} | {current.eval_pairs} | " + " | ".join(
            "—" if acc.get(o) is None else f"{acc[o]:.3f}" for o in objectives) + " |")
    out += ["", "PPO per round: held-out prompts' normalized reward by the round's own reward model, "
            "reference (before) → trained policy (after):", "",
            "| round | PPO run | " + " | ".join(objectives) + " | combined |",
            "|---:|---:|" + "---|" * (len(objectives) + 1)]
    for current in rounds:
        before, after = current.policy_run.eval_before, current.policy_run.eval_after
        cells = [f"{before[o]['normalized']:+.3f} → {after[o]['normalized']:+.3f}" if o in before and o in after
                 else "—" for o in objectives]
        cells.append(f"{before.get('combined', float('nan')):+.3f} → {after.get('combined', float('nan')):+.3f}")
        out.append(f"| {current.number} | {current.policy_run_id} | " + " | ".join(cells) + " |")
    out += ["", "Common ruler: the oracle's normalized reward of each round's generated responses (mean of a pair's "
            "two, mean ± standard error over prompts; round 0 = base policy), and the difference from round 0:", "",
            "| batch | policy | pairs | " + " | ".join(objectives) + " | "
            + " | ".join(f"Δ{o} vs 0" for o in objectives) + " |", "|---|---|---:|" + "---:|" * (2 * len(objectives))]
    for number, (generation, result) in enumerate(zip(generations, rulers)):
        policy = f"PPO run {generation.policy_run_id}" if generation.policy_run_id else "base"
        cells = [f"{m:+.3f} ± {s:.3f}" for m, s in (result["mean"][o] for o in objectives)]
        deltas = ["—"] * len(objectives) if number == 0 else [
            "{:+.3f} ± {:.3f}".format(*difference(rulers[0], result, o)) for o in objectives]
        out.append(f"| {number} ({generation.config.get('pairing')}) | {policy} | {result['n']} | "
                   + " | ".join(cells + deltas) + " |")
    wall = timings.get("ended", time.time()) - timings["started"]
    out += ["", f"Driver wall: {wall:.0f} s (skip walk over the already-labelled queue: {walk['skipped']} tasks in "
            f"{walk['seconds']:.0f} s). Load average (1/5/15 min) at the start and after each round: "
            + "; ".join(" ".join(f"{x:.2f}" for x in load) for load in timings["load"])]
    text = "\n".join(out)
    print(text, flush=True)
    if out_path:
        Path(out_path).write_text(text + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("split")
    p.add_argument("data", type=Path)
    p.add_argument("out_dir", type=Path)
    p = sub.add_parser("setup")
    p.add_argument("--annotator-password", default="auto-annotator-password")
    p = sub.add_parser("drive")
    p.add_argument("--url", required=True)
    p.add_argument("--oracle-run", type=int, required=True)
    p.add_argument("--pairs", type=int, default=24, help="generated pairs per round = retrain_every")
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--steps", type=int, default=8, help="PPO steps per round")
    p.add_argument("--round-timeout", type=float, default=3600)
    p.add_argument("--admin-password", default=os.environ.get("MORM_DEMO_PASSWORD", "morm-admin"))
    p.add_argument("--annotator-password", default="auto-annotator-password")
    p.add_argument("--out", type=Path)
    p.add_argument("--state", type=Path, required=True, help="where the run ids and label counts are kept")
    p = sub.add_parser("report")
    p.add_argument("--state", type=Path, required=True)
    p.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.command == "split":
        split(args.data, args.out_dir)
    elif args.command == "setup":
        setup(args.annotator_password)
    elif args.command == "report":
        report_command(args)
    else:
        drive(args)


if __name__ == "__main__":
    main()
