"""The frozen-mode embedding cache: only texts never embedded before are computed."""

import torch

from rm_worker.training import EmbeddingCache, RewardModel
from tests.tiny_models import make_tokenizer, tiny_bert


def frozen_model() -> RewardModel:
    torch.manual_seed(0)
    return RewardModel(tiny_bert(), make_tokenizer(), ["helpful"], mode="frozen", max_length=32)


def test_cached_texts_are_reused_and_only_new_texts_are_computed(tmp_path):
    model = frozen_model()
    texts = ["w1 good", "w2 bad", "w3 safe", "w1 good"]
    with EmbeddingCache(tmp_path, model.embedding_namespace(), model.embed_texts) as cache:
        first = cache.embed(texts)
        assert (cache.computed, cache.reused) == (3, 0)  # the repeated text is embedded once
        assert first.shape == (4, 32) and torch.equal(first[0], first[3])
        assert torch.allclose(first, model.embed_texts(texts))

        again = cache.embed(texts)
        assert (cache.computed, cache.reused) == (3, 3)
        assert torch.equal(again, first)

        cache.embed(["w4 harm", "w1 good", "w5 w6"])
        assert (cache.computed, cache.reused) == (5, 4)

    # A later run (new process, same folder) finds them on disk.
    with EmbeddingCache(tmp_path, model.embedding_namespace(), model.embed_texts) as cache:
        assert torch.equal(cache.embed(texts), first) and cache.computed == 0


def test_another_backbone_does_not_reuse_the_embeddings(tmp_path):
    model = frozen_model()
    with EmbeddingCache(tmp_path, model.embedding_namespace(), model.embed_texts) as cache:
        cache.embed(["w1 good"])
    other = RewardModel(tiny_bert(), make_tokenizer(), ["helpful"], mode="frozen", max_length=32)
    assert other.embedding_namespace() != model.embedding_namespace()
    with EmbeddingCache(tmp_path, other.embedding_namespace(), other.embed_texts) as cache:
        cache.embed(["w1 good"])
        assert cache.computed == 1
