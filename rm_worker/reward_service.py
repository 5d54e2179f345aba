"""A trained reward model served over HTTP (`manage.py serve_rm`): morm's ``POST /score`` and OpenRLHF's
``--remote_rm_url`` protocol (``POST /get_reward``), on one loaded model.

``POST /score`` takes ``{"items": [{"prompt": str | [chat turns], "response": str}, ...], "weights"?: {objective:
w}}`` and answers per-objective raw rewards, the same normalized with the stats saved with the model
(`RewardModel.normalize`), and the combined reward ``Σ_o w_o r̂_o``. The weights default to the house weights PPO
uses (`scalarization.resolve_weights`), so the combined reward is the one a morm PPO run maximizes by default;
``weights`` overrides some of them, the others keep theirs, as in a PPO run's config.

``POST /get_reward`` follows OpenRLHF (``openrlhf/utils/remote_rm_utils.py`` and its example server
``openrlhf/cli/serve_rm.py``): it posts ``{"query": [prompt + response], "prompts": [prompt], "labels": [...]}``
and reads ``"rewards"`` (``"scores"`` for dynamic filtering and ``"extra_logs"`` for its logs, in versions that
read them). Its queries are the policy's decoded token sequences (``skip_special_tokens=False``), written in the
*policy's* chat template, special tokens included: a query that contains its prompt is scored as that prompt's
response (the text after the prompt's first occurrence; a BOS token before it is dropped), any other (older
OpenRLHF sends no prompts) whole, as a response to an empty prompt. The policy's end-of-sequence token stays in
the response. ``labels`` are ignored: a learned reward model needs no reference answer.

One forward pass at a time (a lock around the model), in batches of ``batch_size``, under a threaded server
whose other threads parse and answer requests meanwhile. No authentication: bind to 127.0.0.1, or put an
authenticating proxy in front. No Django here: the command resolves the run and hands over the model.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .training.data import Prompt
from .training.model import RewardModel
from .training.trl_rewards import objective_weights

logger = logging.getLogger(__name__)

SCORE_PATH = "/score"
OPENRLHF_PATH = "/get_reward"
HEALTH_PATH = "/health"
# A request body larger than this is refused before it is read (413): the batch limit in bytes.
MAX_BODY_BYTES = 32 * 1024 * 1024


class RequestError(ValueError):
    """A request the client can fix: answered with ``status`` and ``{"detail": message}``."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class _ScoreItem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    prompt: str | list[dict[str, str]]
    response: str

    @field_validator("prompt", mode="before")
    @classmethod
    def _string_or_chat_turns(cls, value: Any) -> Any:
        # One message for both shapes, rather than pydantic's one per branch of the union.
        turns_ok = isinstance(value, list) and value and all(
            isinstance(turn, dict) and set(turn) == {"role", "content"}
            and all(isinstance(part, str) for part in turn.values()) for turn in value)
        if not (isinstance(value, str) or turns_ok):
            raise ValueError('must be a string or a non-empty list of chat turns {"role": str, "content": str}')
        return value


class _ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    items: Annotated[list[_ScoreItem], Field(min_length=1)]
    weights: dict[str, float] | None = None


class _OpenRLHFRequest(BaseModel):
    # OpenRLHF forks add keys (datasources, token ids); they carry nothing a reward model reads.
    model_config = ConfigDict(extra="ignore", strict=True)
    query: Annotated[list[str], Field(min_length=1)]
    prompts: list[str] | None = None
    labels: list[Any] | None = None


def _parsed(schema: type[BaseModel], body: bytes) -> BaseModel:
    """``body`` validated by ``schema``; a `RequestError` naming the first bad field (``items.0.response``)."""
    try:
        return schema.model_validate_json(body)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise RequestError(f"{field}: {first['msg']}") from error


class RewardService:
    """One loaded `RewardModel` scoring requests in batches of ``batch_size``, one forward pass at a time."""

    def __init__(self, model: RewardModel, *, run_id: int, batch_size: int = 32, max_items: int = 1024):
        missing = [objective for objective in model.objectives if objective not in model.normalization]
        if missing:
            raise ValueError(f"the model has no normalization stats for {', '.join(missing)}")
        self.model = model
        self.run_id = run_id
        self.batch_size = batch_size
        self.max_items = max_items
        self._lock = threading.Lock()

    def _check_size(self, count: int, field: str) -> None:
        if count > self.max_items:
            raise RequestError(f"{field}: at most {self.max_items} per request, got {count}")

    def score(
        self, prompts: Sequence[Prompt], responses: Sequence[str], weights: dict[str, float] | None = None
    ) -> dict:
        """Raw, normalized and combined rewards of each (prompt, response), and the seconds the model took."""
        try:
            weight_list = objective_weights(self.model.objectives, weights)
        except ValueError as error:
            raise RequestError(f"weights: {error}") from error
        texts = [self.model.scored_text(prompt, response) for prompt, response in zip(prompts, responses)]
        with self._lock:
            started = time.perf_counter()
            raw = self.model.rewards_for_texts(texts, batch_size=self.batch_size)
            seconds = time.perf_counter() - started
        normalized = self.model.normalize(raw)
        combined = normalized @ torch.tensor(weight_list)
        logger.info("run %s: scored %d items in %.3fs", self.run_id, len(texts), seconds)
        return {
            "objectives": self.model.objectives,
            "weights": dict(zip(self.model.objectives, weight_list)),
            "rewards": [dict(zip(self.model.objectives, row)) for row in raw.tolist()],
            "normalized": [dict(zip(self.model.objectives, row)) for row in normalized.tolist()],
            "combined": combined.tolist(),
            "seconds": seconds,
        }

    def score_request(self, body: bytes) -> dict:
        """The answer to a ``POST /score`` body (see the module docstring)."""
        request = _parsed(_ScoreRequest, body)
        self._check_size(len(request.items), "items")
        return self.score([item.prompt for item in request.items], [item.response for item in request.items],
                          request.weights)

    def openrlhf_request(self, body: bytes) -> dict:
        """The answer to OpenRLHF's ``POST /get_reward`` body: the combined rewards as ``rewards`` and ``scores``,
        each objective's normalized reward in ``extra_logs`` as ``morm_<objective>``."""
        request = _parsed(_OpenRLHFRequest, body)
        self._check_size(len(request.query), "query")
        prompts = request.prompts
        if prompts is not None and len(prompts) != len(request.query):
            raise RequestError(f"prompts: {len(prompts)} prompts for {len(request.query)} queries")
        pairs = [_split_query(query, prompts[i] if prompts else "") for i, query in enumerate(request.query)]
        scored = self.score([prompt for prompt, _ in pairs], [response for _, response in pairs])
        return {
            "rewards": scored["combined"],
            "scores": scored["combined"],
            "extra_logs": {f"morm_{objective}": [row[objective] for row in scored["normalized"]]
                           for objective in scored["objectives"]},
        }

    def health(self) -> dict:
        """What ``GET /health`` answers: the run served and how."""
        return {"run": self.run_id, "objectives": self.model.objectives, "batch_size": self.batch_size,
                "max_items": self.max_items, "device": str(self.model.device)}


def _split_query(query: str, prompt: str) -> tuple[str, str]:
    """(prompt, response) of an OpenRLHF query: the text after ``prompt`` when the query holds it (the policy's
    tokenizer may put a BOS token before it), else the whole query with an empty prompt."""
    start = query.find(prompt) if prompt else -1
    if start < 0:
        return "", query
    return prompt, query[start + len(prompt):]


class _Handler(BaseHTTPRequestHandler):
    server: RewardServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == HEALTH_PATH:
            self._answer(200, self.server.service.health())
        else:
            self._answer(404, {"detail": f"no such path {self.path}; GET {HEALTH_PATH}"})

    def do_POST(self) -> None:  # noqa: N802
        routes = {SCORE_PATH: self.server.service.score_request, OPENRLHF_PATH: self.server.service.openrlhf_request}
        route = routes.get(self.path)
        try:
            body = self._body()
            if route is None:
                raise RequestError(f"no such path {self.path}; POST {SCORE_PATH} or {OPENRLHF_PATH}", 404)
            self._answer(200, route(body))
        except RequestError as error:
            self._answer(error.status, {"detail": str(error)})
        except Exception:
            # The server's boundary: the client gets a message, not a dropped connection or a traceback;
            # the traceback goes to the log.
            logger.exception("run %s: %s failed", self.server.service.run_id, self.path)
            self._answer(500, {"detail": "scoring failed; the server's log has the error"})

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise RequestError("Content-Length: a JSON body with its length is required", 411)
        if int(length) > MAX_BODY_BYTES:
            # Not read: the connection closes after this answer.
            self.close_connection = True
            raise RequestError(f"body: at most {MAX_BODY_BYTES} bytes, got {length}", 413)
        return self.rfile.read(int(length))

    def _answer(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Each batch already logs one line (items, seconds); the access line goes to debug.
        logger.debug("%s %s", self.address_string(), format % args)


class RewardServer(ThreadingHTTPServer):
    """A threaded HTTP server answering with ``service`` (`serve_forever` to run it, `shutdown` to stop it)."""

    daemon_threads = True

    def __init__(self, service: RewardService, host: str, port: int):
        self.service = service
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"
