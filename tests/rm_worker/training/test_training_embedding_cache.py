"""The frozen-mode embedding cache: only texts never embedded before are computed."""

import torch

from rm_worker.training import EmbeddingCache, RewardModel, scored_text
from rm_worker.training.embedding_cache import embedding_namespace
from tests.tiny_models import make_tokenizer, tiny_bert


def frozen_model(pooling: str = "auto") -> RewardModel:
    torch.manual_seed(0)
    return RewardModel(tiny_bert(), make_tokenizer(), ["helpful"], mode="frozen", pooling=pooling, max_length=32)


def items(*pairs: tuple[str, str]) -> list:
    return [scored_text(prompt, response) for prompt, response in pairs]


def test_cached_texts_are_reused_and_only_new_texts_are_computed(tmp_path):
    model = frozen_model()
    texts = items(("w1", "good"), ("w2", "bad"), ("w3", "safe"), ("w1", "good"))
    with EmbeddingCache(tmp_path, embedding_namespace(model), model.embed_texts) as cache:
        first = cache.embed(texts)
        assert (cache.computed, cache.reused) == (3, 0)  # the repeated text is embedded once
        assert first.shape == (4, 32) and torch.equal(first[0], first[3])
        assert torch.allclose(first, model.embed_texts(texts))

        again = cache.embed(texts)
        assert (cache.computed, cache.reused) == (3, 3)
        assert torch.equal(again, first)

        cache.embed(items(("w4", "harm"), ("w1", "good"), ("w5", "w6")))
        assert (cache.computed, cache.reused) == (5, 4)

    # A later run (new process, same folder) finds them on disk.
    with EmbeddingCache(tmp_path, embedding_namespace(model), model.embed_texts) as cache:
        assert torch.equal(cache.embed(texts), first) and cache.computed == 0


def test_another_backbone_does_not_reuse_the_embeddings(tmp_path):
    model = frozen_model()
    with EmbeddingCache(tmp_path, embedding_namespace(model), model.embed_texts) as cache:
        cache.embed(items(("w1", "good")))
    other = RewardModel(tiny_bert(), make_tokenizer(), ["helpful"], mode="frozen", max_length=32)
    assert embedding_namespace(other) != embedding_namespace(model)
    with EmbeddingCache(tmp_path, embedding_namespace(other), other.embed_texts) as cache:
        cache.embed(items(("w1", "good")))
        assert cache.computed == 1


def test_the_same_text_with_another_response_span_is_another_entry(tmp_path):
    model = frozen_model(pooling="response")
    whole = scored_text("w1 w2", "good safe")
    shorter = whole._replace(response_chars=len("safe"))
    with EmbeddingCache(tmp_path, embedding_namespace(model), model.embed_texts) as cache:
        first, second = cache.embed([whole, shorter])
        assert cache.computed == 2 and not torch.equal(first, second)
        assert torch.allclose(second, model.embed_texts([shorter])[0])
