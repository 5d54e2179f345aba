"""From pairs to tensors: left-truncated tokens, per-objective label tensors, length-bucketed batches."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .data import PreferencePair, Prompt, ScoredText, scored_text


def encode_texts(tokenizer, texts: Sequence[str], max_length: int) -> tuple[list[list[int]], list[bool]]:
    """Token ids of each text, cut from the LEFT to ``max_length``, and whether each was cut.

    The end of a conversation is where two responses differ, so that is what is kept. The
    tokenizer is switched to left truncation (special tokens such as [CLS] stay in place).
    """
    tokenizer.truncation_side = "left"
    if not texts:
        return [], []
    # One token of slack tells a text that fits from one that was cut, without a second full pass.
    probe = tokenizer(list(texts), truncation=True, max_length=max_length + 1)["input_ids"]
    cut = [len(ids) > max_length for ids in probe]
    long_texts = [text for text, was_cut in zip(texts, cut) if was_cut]
    if long_texts:
        shortened = iter(tokenizer(long_texts, truncation=True, max_length=max_length)["input_ids"])
        probe = [next(shortened) if was_cut else ids for ids, was_cut in zip(probe, cut)]
    return probe, cut


def require_offsets(tokenizer) -> None:
    """Raise unless ``tokenizer`` maps tokens to character offsets, which `response_starts` needs."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            "response pooling (the default) needs a fast tokenizer: it finds the response by character "
            "offsets; choose another pooling for this backbone (auto, mean, last or cls)"
        )


def response_starts(tokenizer, items: Sequence[ScoredText], max_length: int) -> list[int]:
    """Position of each item's first response token in its ids as `encode_texts` cuts them (``response`` pooling).

    Read off the fast tokenizer's character offsets. A token that straddles the boundary counts as
    response; a response that kept no token (an empty one) points at the last token, so no span is empty.
    """
    require_offsets(tokenizer)
    if not items:
        return []
    tokenizer.truncation_side = "left"
    encoded = tokenizer(
        [item.text for item in items], truncation=True, max_length=max_length, return_offsets_mapping=True
    )
    starts = []
    for item, offsets in zip(items, encoded["offset_mapping"]):
        boundary = len(item.text) - item.response_chars
        # Special tokens have (0, 0) offsets and the context is never empty, so they never pass the boundary.
        starts.append(next((i for i, (_, end) in enumerate(offsets) if end > boundary), len(offsets) - 1))
    return starts


def pad_token_id(tokenizer) -> int:
    """The id that fills padding: the pad token, else EOS (decoders often have no pad), else 0."""
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0


def pad_right(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), padded on the right to the longest sequence."""
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


@dataclass
class PairBatch:
    """A batch of B pairs: A sides are rows [0, B) and B sides rows [B, 2B) of the model input.

    Either token inputs (``input_ids``/``attention_mask``) or cached pooled ``embeddings`` (frozen mode).
    """

    chosen_is_a: torch.Tensor  # [B, O] bool
    label_mask: torch.Tensor  # [B, O] bool: labeled with a preference for that objective
    margins: torch.Tensor  # [B, O] float: 0 unless margins are used
    input_ids: torch.Tensor | None = None  # [2B, L]
    attention_mask: torch.Tensor | None = None  # [2B, L]
    embeddings: torch.Tensor | None = None  # [2B, H]
    response_start: torch.Tensor | None = None  # [2B]: first response token per row (``response`` pooling)
    ratings: torch.Tensor | None = None  # [B, 2, O] float: Likert ratings of the A and B sides, 0 where missing
    rating_mask: torch.Tensor | None = None  # [B, 2, O] bool: which of them are present

    def to(self, device: torch.device) -> PairBatch:
        moved = {name: None if value is None else value.to(device) for name, value in vars(self).items()}
        return PairBatch(**moved)


@dataclass
class EncodedPairs:
    """Tokenized pairs with their label tensors, in the order of the pairs they came from."""

    ids_a: list[list[int]]
    ids_b: list[list[int]]
    chosen_is_a: torch.Tensor  # [N, O] bool
    label_mask: torch.Tensor  # [N, O] bool
    margins: torch.Tensor  # [N, O] float
    truncated: int  # pairs with at least one side cut to max_length
    starts_a: list[int] | None = None  # see `response_starts`; only for ``response`` pooling
    starts_b: list[int] | None = None
    ratings: torch.Tensor | None = None  # [N, 2, O] float, see `rating_tensors`; None: no ratings used
    rating_mask: torch.Tensor | None = None  # [N, 2, O] bool

    def __len__(self) -> int:
        return len(self.ids_a)

    @property
    def lengths(self) -> list[int]:
        """Padded width each pair needs (both sides share one batch)."""
        return [max(len(a), len(b)) for a, b in zip(self.ids_a, self.ids_b)]

    def token_batch(self, indices: Sequence[int], pad_id: int) -> PairBatch:
        input_ids, attention_mask = pad_right(
            [self.ids_a[i] for i in indices] + [self.ids_b[i] for i in indices], pad_id
        )
        response_start = None
        if self.starts_a is not None:
            response_start = torch.tensor([self.starts_a[i] for i in indices] + [self.starts_b[i] for i in indices])
        return PairBatch(
            **self._labels(indices), input_ids=input_ids, attention_mask=attention_mask, response_start=response_start
        )

    def embedding_batch(
        self, indices: Sequence[int], embeddings_a: torch.Tensor, embeddings_b: torch.Tensor
    ) -> PairBatch:
        rows = torch.as_tensor(list(indices), dtype=torch.long)
        return PairBatch(**self._labels(indices), embeddings=torch.cat([embeddings_a[rows], embeddings_b[rows]]))

    def label_batch(self, indices: Sequence[int]) -> PairBatch:
        """The labels of the pairs ``indices`` without their inputs (what metrics and loss counts read)."""
        return PairBatch(**self._labels(indices))

    def _labels(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        rows = torch.as_tensor(list(indices), dtype=torch.long)
        labels = {
            "chosen_is_a": self.chosen_is_a[rows],
            "label_mask": self.label_mask[rows],
            "margins": self.margins[rows],
        }
        if self.ratings is not None:
            labels.update(ratings=self.ratings[rows], rating_mask=self.rating_mask[rows])
        return labels


def label_tensors(
    pairs: Sequence[PreferencePair], objectives: Sequence[str], margin_scale: float | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(chosen_is_a, label_mask, margins), each [N, O]; ties and missing labels are masked.

    Margins are ``|score| * margin_scale``, or all 0 when ``margin_scale`` is None (margins off).
    """
    scores = torch.tensor([[pair.scores.get(objective, 0.0) for objective in objectives] for pair in pairs])
    scores = scores.reshape(len(pairs), len(objectives))
    margins = scores.abs() * margin_scale if margin_scale is not None else torch.zeros_like(scores)
    return scores < 0, scores != 0, margins


def rating_tensors(pairs: Sequence[PreferencePair], objectives: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(ratings, rating_mask), each [N, 2, O]: the A and B sides' Likert ratings per objective, 0 and masked
    where a side is not rated (never guessed)."""
    ratings = torch.zeros(len(pairs), 2, len(objectives))
    rating_mask = torch.zeros(len(pairs), 2, len(objectives), dtype=torch.bool)
    for row, pair in enumerate(pairs):
        for column, objective in enumerate(objectives):
            for side, rating in enumerate(pair.ratings.get(objective, (None, None))):
                if rating is not None:
                    ratings[row, side, column] = rating
                    rating_mask[row, side, column] = True
    return ratings, rating_mask


def encode_pairs(
    pairs: Sequence[PreferencePair],
    tokenizer,
    objectives: Sequence[str],
    max_length: int,
    margin_scale: float | None = None,
    response_spans: bool = False,
    text_of: Callable[[Prompt, str], ScoredText] = scored_text,
    use_ratings: bool = False,
) -> EncodedPairs:
    """Tokenize both sides of every pair (left truncation: long pairs are cut, never dropped).

    ``response_spans`` also finds where each response starts (`response_starts`), for ``response`` pooling.
    ``text_of(prompt, response)`` writes each side as the model reads it (`RewardModel.scored_text`).
    ``use_ratings`` adds the pairs' `rating_tensors` when any pair is rated.
    """
    items_a = [text_of(p.prompt, p.response_a) for p in pairs]
    items_b = [text_of(p.prompt, p.response_b) for p in pairs]
    ids_a, cut_a = encode_texts(tokenizer, [item.text for item in items_a], max_length)
    ids_b, cut_b = encode_texts(tokenizer, [item.text for item in items_b], max_length)
    chosen_is_a, label_mask, margins = label_tensors(pairs, objectives, margin_scale)
    truncated = sum(a or b for a, b in zip(cut_a, cut_b))
    starts_a = starts_b = None
    if response_spans:
        starts_a = response_starts(tokenizer, items_a, max_length)
        starts_b = response_starts(tokenizer, items_b, max_length)
    ratings = rating_mask = None
    if use_ratings and any(pair.ratings for pair in pairs):
        ratings, rating_mask = rating_tensors(pairs, objectives)
    return EncodedPairs(
        ids_a, ids_b, chosen_is_a, label_mask, margins, truncated, starts_a, starts_b, ratings, rating_mask
    )


def bucketed_batches(lengths: Sequence[int], batch_size: int, seed: int, chunk_batches: int = 50) -> list[list[int]]:
    """Index batches of similar lengths, in a seeded random order.

    Shuffle, sort by length within chunks of ``chunk_batches * batch_size`` (so a batch pads little
    yet batches still mix across the data), cut into batches, then shuffle the batch order.
    Every index appears exactly once; the same seed gives the same batches.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = chunk_batches * batch_size
    batches = []
    for start in range(0, len(order), chunk):
        by_length = sorted(order[start : start + chunk], key=lambda index: lengths[index])
        batches.extend(by_length[i : i + batch_size] for i in range(0, len(by_length), batch_size))
    rng.shuffle(batches)
    return batches
