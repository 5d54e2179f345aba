"""serve_rm: a trained run's model over real HTTP, /score and OpenRLHF's /get_reward, scoring as in-process."""

import http.client
import io
import json
import re
import shlex
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import CommandError, call_command

from annotate_app.models import RewardModelRun, RunStatus
from annotate_app.services.runs import run_dir
from rm_worker.management.commands.serve_rm import Command
from rm_worker.training.model import RewardModel
from rm_worker.training.scalarization import resolve_weights
from rm_worker.training.trainer import MODEL_DIR
from tests.factories import labelled_project, succeeded_reward_run, trained_reward_run

# The command runs in a thread with its own database connection: it must see the committed run.
pytestmark = pytest.mark.django_db(transaction=True)

BATCH_SIZE = 2
MAX_ITEMS = 4


class _ReadyStream(io.StringIO):
    """Stdout that says when the command wrote its line (the server is listening)."""

    def __init__(self):
        super().__init__()
        self.written = threading.Event()

    def write(self, text):
        result = super().write(text)
        self.written.set()
        return result


@pytest.fixture
def served():
    """(url, run, in-process model) of a tiny trained run served by serve_rm on a free port."""
    run = trained_reward_run()
    command, stdout = Command(), _ReadyStream()
    thread = threading.Thread(
        target=call_command,
        args=(command, str(run.pk), "--port", "0", "--device", "cpu",
              "--batch-size", str(BATCH_SIZE), "--max-items", str(MAX_ITEMS)),
        kwargs={"stdout": stdout},
        daemon=True,
    )
    thread.start()
    assert stdout.written.wait(timeout=120), "serve_rm never said it was serving"
    url = re.search(r"http://\S+?:\d+", stdout.getvalue()).group(0)
    model = RewardModel.from_pretrained(run_dir(run) / MODEL_DIR, device="cpu")
    yield url, run, model
    command.server.shutdown()
    thread.join(timeout=60)


def post(url, payload) -> tuple[int, dict]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


ITEMS = [
    {"prompt": "How do I boil an egg?", "response": "Put it in boiling water for eight minutes."},
    {"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Tell me a joke."}], "response": "Why did the chicken cross the road?"},
    {"prompt": "Say nothing.", "response": ""},
]


def in_process(model, items, weights=None):
    """What /score should answer for ``items``, computed with the in-process model."""
    prompts, responses = [item["prompt"] for item in items], [item["response"] for item in items]
    raw = model.score_batch(prompts, responses, batch_size=BATCH_SIZE)
    normalized = model.score_batch(prompts, responses, normalized=True, batch_size=BATCH_SIZE)
    resolved = resolve_weights(model.objectives, weights)
    combined = [sum(resolved[o] * row[o] for o in model.objectives) for row in normalized]
    return raw, normalized, combined


def assert_rows(served_rows, expected_rows):
    assert len(served_rows) == len(expected_rows)
    for served_row, expected_row in zip(served_rows, expected_rows):
        assert served_row == pytest.approx(expected_row, rel=1e-5, abs=1e-6)


def test_score_answers_the_in_process_rewards_normalized_and_combined(served):
    url, run, model = served
    status, answer = post(url + "/score", {"items": ITEMS})
    assert status == 200, answer
    raw, normalized, combined = in_process(model, ITEMS)
    assert answer["objectives"] == model.objectives == run.config["objectives"]
    assert answer["weights"] == resolve_weights(model.objectives)
    assert_rows(answer["rewards"], raw)
    assert_rows(answer["normalized"], normalized)
    assert answer["combined"] == pytest.approx(combined, rel=1e-5, abs=1e-6)
    assert answer["seconds"] >= 0

    weights = {model.objectives[0]: 2.5}
    status, weighted = post(url + "/score", {"items": ITEMS, "weights": weights})
    assert status == 200, weighted
    assert weighted["weights"] == resolve_weights(model.objectives, weights)
    assert weighted["combined"] == pytest.approx(in_process(model, ITEMS, weights)[2], rel=1e-5, abs=1e-6)


def test_get_reward_speaks_openrlhf_and_scores_the_response_after_its_prompt(served):
    url, _, model = served
    prompt = "<|user|>How do I boil an egg?<|assistant|>"
    response = "Put it in boiling water for eight minutes."
    unrelated = "A query that does not hold its prompt."
    # The policy's tokenizer may decode a BOS token before the prompt: the response still follows the prompt.
    status, answer = post(url + "/get_reward", {"query": [prompt + response, unrelated, "<s>" + prompt + response],
                                                "prompts": [prompt, prompt, prompt], "labels": ["", "", ""]})
    assert status == 200, answer
    _, normalized, combined = in_process(model, [{"prompt": prompt, "response": response},
                                                 {"prompt": "", "response": unrelated},
                                                 {"prompt": prompt, "response": response}])
    assert answer["rewards"] == answer["scores"] == pytest.approx(combined, rel=1e-5, abs=1e-6)
    assert set(answer["extra_logs"]) == {f"morm_{o}" for o in model.objectives}
    for objective in model.objectives:
        assert answer["extra_logs"][f"morm_{objective}"] == pytest.approx(
            [row[objective] for row in normalized], rel=1e-5, abs=1e-6)

    # Older OpenRLHF posts the joined texts only: each is scored whole, as a response to an empty prompt.
    status, bare = post(url + "/get_reward", {"query": [prompt + response]})
    assert status == 200, bare
    assert bare["rewards"] == pytest.approx(
        in_process(model, [{"prompt": "", "response": prompt + response}])[2], rel=1e-5, abs=1e-6)


def test_bad_requests_are_400_naming_the_field(served):
    url, _, model = served
    item = {"prompt": "p", "response": "r"}
    cases = [
        ("/score", b"{not json", "body: Invalid JSON"),
        ("/score", {}, "items: Field required"),
        ("/score", {"items": []}, "items: List should have at least 1 item"),
        ("/score", {"items": [{"prompt": "p"}]}, "items.0.response: Field required"),
        ("/score", {"items": [{"prompt": 3, "response": "r"}]}, "items.0.prompt: Value error, must be a string or"),
        ("/score", {"items": [{"prompt": [], "response": "r"}]}, "items.0.prompt: Value error, must be a string or"),
        ("/score", {"items": [{"prompt": [{"role": "user"}], "response": "r"}]}, "items.0.prompt: Value error"),
        ("/score", {"items": [{"prompt": "p", "response": ["r"]}]}, "items.0.response: Input should be a valid str"),
        ("/score", {"items": [item], "extra": 1}, "extra: Extra inputs are not permitted"),
        ("/score", {"items": [item] * (MAX_ITEMS + 1)}, f"items: at most {MAX_ITEMS} per request, got {MAX_ITEMS + 1}"),
        ("/score", {"items": [item], "weights": {"nonsense": 1.0}}, "weights: weights name objectives the model lacks"),
        ("/score", {"items": [item], "weights": {model.objectives[0]: "heavy"}}, f"weights.{model.objectives[0]}"),
        ("/score", b'{"items": [{"prompt": "p", "response": "r"}], "weights": {"helpful": NaN}}', "weights"),
        ("/get_reward", {"prompts": ["p"]}, "query: Field required"),
        ("/get_reward", {"query": "one text"}, "query: Input should be a valid array"),
        ("/get_reward", {"query": ["a", "b"], "prompts": ["a"]}, "prompts: 1 prompts for 2 queries"),
        ("/get_reward", {"query": ["q"] * (MAX_ITEMS + 1)}, f"query: at most {MAX_ITEMS} per request"),
    ]
    for path, payload, detail in cases:
        status, answer = post(url + path, payload)
        assert (status, detail in answer.get("detail", "")) == (400, True), (path, payload, answer)

    host, port = url.removeprefix("http://").split(":")
    for headers, expected in (({"Content-Length": str(10**9)}, (413, "body: at most")),
                              ({}, (411, "Content-Length: a JSON body with its length is required"))):
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        connection.putrequest("POST", "/score")
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        assert (response.status, expected[1] in json.loads(response.read())["detail"]) == (expected[0], True)
        connection.close()

    status, answer = post(url + "/nowhere", {"items": [item]})
    assert status == 404 and "POST /score or /get_reward" in answer["detail"]
    with urllib.request.urlopen(url + "/health", timeout=60) as response:
        assert json.loads(response.read())["objectives"] == model.objectives


@pytest.mark.parametrize("status", [RunStatus.QUEUED, RunStatus.FAILED])
def test_a_run_that_did_not_succeed_is_a_command_error(status):
    run = succeeded_reward_run(labelled_project())
    RewardModelRun.objects.filter(pk=run.pk).update(status=status)
    with pytest.raises(CommandError, match=f"Run {run.pk} is {status}; only a succeeded run has a model to serve"):
        call_command("serve_rm", str(run.pk), "--port", "0")


def test_missing_run_model_folder_and_device_are_command_errors():
    with pytest.raises(CommandError, match="No reward-model run 999999"):
        call_command("serve_rm", "999999")
    run = succeeded_reward_run(labelled_project())
    with pytest.raises(CommandError, match=f"Run {run.pk} has no model folder"):
        call_command("serve_rm", str(run.pk))
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("serve_rm", str(run.pk), "--batch-size", "0")
    with pytest.raises(CommandError, match="--device: "):
        call_command("serve_rm", str(run.pk), "--device", "abacus")


def test_compose_worker_reward_serves_the_run_from_its_environment_on_the_host_loopback():
    compose = yaml.safe_load((Path(settings.BASE_DIR) / "docker-compose.yml").read_text())
    service = compose["services"]["worker-reward"]
    script = shlex.split(service["command"][2])
    assert service["command"][:2] == ["sh", "-c"] and script[:4] == ["exec", "python", "manage.py", "serve_rm"]
    # $$ is compose's escape: the container's shell reads the run id, and refuses to start without one.
    assert script[4].startswith("$${MORM_SERVE_RM_RUN:?") and script[5:9] == ["--host", "0.0.0.0", "--port", "8001"]
    assert service["environment"]["MORM_SERVE_RM_RUN"] == "${MORM_SERVE_RM_RUN:-}"
    assert service["environment"]["DATABASE_URL"] == compose["services"]["web"]["environment"]["DATABASE_URL"]
    assert service["ports"] == ["127.0.0.1:8001:8001"] and service["profiles"] == ["reward"]
    assert "http://localhost:8001/health" in " ".join(service["healthcheck"]["test"])
