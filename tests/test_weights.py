"""Weights: strict loading of the official layout, and where the file is looked for."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import pytest
import torch

from tests.helpers import SHARED
from xmempp.errors import XMemPPError
from xmempp.model import weights
from xmempp.model.network import XMem
from xmempp.model.weights import load_network, model_to_checkpoint_names


@pytest.fixture(scope="module")
def official_state(checkpoint) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, weights_only=True)


def save(state: dict, path: Path) -> Path:
    torch.save(state, path)
    return path


def test_the_network_has_the_official_size():
    assert sum(p.numel() for p in XMem().parameters()) == 62_185_224


@pytest.mark.skipif(not (SHARED / "reference").is_dir(), reason="needs ../shared/reference")
def test_the_state_dict_is_exactly_the_official_layout():
    rows = (SHARED / "reference" / "xmem_checkpoint_layout.tsv").read_text().splitlines()
    layout = {name: shape for name, shape, _ in (row.split("\t") for row in rows)}
    ours = model_to_checkpoint_names(XMem().state_dict())
    assert len(layout) == 412
    assert {n: "x".join(map(str, t.shape)) for n, t in ours.items()} == layout


def test_a_checkpoint_in_the_official_layout_loads(checkpoint, official_state):
    network = load_network(checkpoint, device="cpu")
    loaded = model_to_checkpoint_names(network.state_dict())
    assert torch.equal(loaded["key_encoder.res2.0.conv1.weight"], official_state["key_encoder.res2.0.conv1.weight"])
    assert not network.training


def test_batchnorm_counters_may_be_absent(official_state, tmp_path):
    state = {k: v for k, v in official_state.items() if not k.endswith("num_batches_tracked")}
    assert len(official_state) - len(state) == 58
    load_network(save(state, tmp_path / "no-counters.pth"))


def test_a_missing_tensor_is_named(official_state, tmp_path):
    state = dict(official_state)
    del state["decoder.pred.weight"]
    with pytest.raises(XMemPPError, match="missing tensor decoder.pred.weight"):
        load_network(save(state, tmp_path / "missing.pth"))


def test_an_unexpected_tensor_is_named(official_state, tmp_path):
    state = {**official_state, "decoder.extra.weight": torch.zeros(1)}
    with pytest.raises(XMemPPError, match="unexpected tensor decoder.extra.weight"):
        load_network(save(state, tmp_path / "unexpected.pth"))


def test_a_mis_shaped_tensor_is_named_with_both_shapes(official_state, tmp_path):
    state = {**official_state, "value_encoder.conv1.weight": torch.zeros(64, 4, 7, 7)}
    with pytest.raises(XMemPPError, match=r"value_encoder.conv1.weight has shape \(64, 4, 7, 7\), expected \(64, 5, 7, 7\)"):
        load_network(save(state, tmp_path / "shape.pth"))


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "XMem.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(XMemPPError, match="not a readable PyTorch checkpoint"):
        load_network(path)


@pytest.mark.parametrize("content", [b"not a checkpoint", b"PK\x03\x04 a broken zip"])
def test_the_fingerprint_of_a_file_that_is_not_a_checkpoint_is_refused(tmp_path, content):
    path = tmp_path / "XMem.pth"
    path.write_bytes(content)
    with pytest.raises(XMemPPError, match=f"{path} is not a readable PyTorch checkpoint"):
        weights.weights_fingerprint(path)


def test_the_fingerprint_of_a_legacy_checkpoint_is_that_of_its_network(checkpoint, official_state, tmp_path):
    legacy = tmp_path / "legacy.pth"
    torch.save(official_state, legacy, _use_new_zipfile_serialization=False)
    assert weights.weights_fingerprint(legacy) == weights.weights_fingerprint(load_network(checkpoint, "cpu"))


def test_pickled_code_is_never_executed(tmp_path):
    class Payload:
        def __reduce__(self):
            return (exec, ("raise SystemExit('executed')",))

    path = tmp_path / "evil.pth"
    torch.save({"x": Payload()}, path)
    with pytest.raises(XMemPPError):
        load_network(path)


def test_the_argument_wins_over_the_environment(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("XMEMPP_WEIGHTS", str(tmp_path / "elsewhere.pth"))
    assert weights.find_weights(checkpoint) == checkpoint


def test_the_environment_wins_over_the_default_folder(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "DEFAULT_WEIGHTS_DIR", tmp_path)
    (tmp_path / "XMem.pth").write_bytes(b"")
    monkeypatch.setenv("XMEMPP_WEIGHTS", str(checkpoint))
    assert weights.find_weights() == checkpoint


def test_the_default_folder_is_used_last(tmp_path, monkeypatch):
    monkeypatch.delenv("XMEMPP_WEIGHTS", raising=False)
    monkeypatch.setattr(weights, "DEFAULT_WEIGHTS_DIR", tmp_path)
    assert weights.find_weights() is None
    (tmp_path / "XMem.pth").write_bytes(b"")
    assert weights.find_weights() == tmp_path / "XMem.pth"


def test_offline_without_weights_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("XMEMPP_WEIGHTS", raising=False)
    monkeypatch.setattr(weights, "DEFAULT_WEIGHTS_DIR", tmp_path)
    monkeypatch.setenv("XMEMPP_OFFLINE", "1")
    with pytest.raises(XMemPPError, match=str(tmp_path / "XMem.pth")):
        weights.ensure_weights()


def test_a_download_is_renamed_only_when_complete_and_loadable(checkpoint, tmp_path):
    target = tmp_path / "XMem.pth"
    weights.download_weights(target, url=checkpoint.as_uri(), progress=False)
    assert target.is_file() and list(tmp_path.glob("*.part")) == []


def test_a_download_never_writes_through_a_link_left_where_it_writes(checkpoint, tmp_path):
    """weights/XMem.pth.part, a link to a user's file, had the download written into it (twenty-third hostile
    round)."""
    users = tmp_path / "notes.txt"
    users.write_text("mine")
    target = tmp_path / "weights" / "XMem.pth"
    target.parent.mkdir()
    (target.parent / "XMem.pth.part").symlink_to(users)
    weights.download_weights(target, url=checkpoint.as_uri(), progress=False)
    assert users.read_text() == "mine" and target.read_bytes() == checkpoint.read_bytes()


def test_a_stopped_download_leaves_nothing_behind(checkpoint, tmp_path, monkeypatch):
    """Each Ctrl-C or SIGTERM during `download-weights` left its XMem.pth.<hex>.part, up to 250 MB, behind
    (twenty-fourth hostile round)."""
    def stopped(path, device):
        raise KeyboardInterrupt

    monkeypatch.setattr(weights, "load_network", stopped)
    with pytest.raises(KeyboardInterrupt):
        weights.download_weights(tmp_path / "XMem.pth", url=checkpoint.as_uri(), progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["weights", "weights/sub"])
def test_a_weights_folder_that_is_a_file_is_said_in_words(tmp_path, where):
    """`weights` a regular file: download-weights and run ended in 'unexpected internal failure (FileExistsError)'
    (twenty-fourth hostile round)."""
    (tmp_path / "weights").write_text("mine")
    with pytest.raises(XMemPPError, match="cannot download the XMem weights into .*: it is a file, not a folder|"
                                          "cannot make the weights folder .*: a part of the path is a file"):
        weights.download_weights(tmp_path / where / "XMem.pth", url="file:///nonexistent", progress=False)
    assert (tmp_path / "weights").read_text() == "mine"


def test_a_download_onto_a_folder_is_refused_before_it_starts_naming_it(checkpoint, tmp_path):
    """weights/XMem.pth a folder: the refusal came after the whole download, named the partial file as the folder,
    and left that file behind (twenty-fifth hostile round)."""
    (tmp_path / "XMem.pth").mkdir()
    with pytest.raises(XMemPPError, match=re.escape(f"cannot download the XMem weights to {tmp_path / 'XMem.pth'}: "
                                                    "it is a folder")):
        weights.download_weights(tmp_path / "XMem.pth", url=checkpoint.as_uri(), progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["XMem.pth"]


def test_a_broken_download_leaves_nothing_behind(tmp_path):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"truncated")
    target = tmp_path / "weights" / "XMem.pth"
    with pytest.raises(XMemPPError, match="could not download"):
        weights.download_weights(target, url=broken.as_uri(), progress=False)
    assert list(target.parent.iterdir()) == []


def test_a_checkout_keeps_weights_in_its_weights_folder(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    assert weights.default_weights_dir(tmp_path / "xmempp") == tmp_path / "weights"


def test_an_installed_package_keeps_weights_in_the_torch_hub_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    site_packages = tmp_path / "lib" / "python3.11" / "site-packages"
    assert weights.default_weights_dir(site_packages / "xmempp") == tmp_path / "torch-home" / "hub" / "checkpoints"


def test_this_checkout_uses_its_weights_folder():
    assert Path(__file__).resolve().parents[1] / "weights" == weights.DEFAULT_WEIGHTS_DIR


def test_loading_never_initialises_weights_that_the_checkpoint_replaces(checkpoint, monkeypatch):
    touched = []
    for name in ("kaiming_uniform_", "kaiming_normal_", "uniform_", "normal_", "ones_", "zeros_", "constant_"):
        original = getattr(torch.nn.init, name)

        def spy(tensor, *args, _original=original, **kwargs):
            touched.append(tensor.device.type)
            return _original(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.nn.init, name, spy)
    network = load_network(checkpoint, device="cpu")
    assert set(touched) <= {"meta"}
    assert not any(t.is_meta for t in [*network.parameters(), *network.buffers()])


def test_loading_gives_exactly_the_checkpoint(checkpoint, official_state):
    loaded = model_to_checkpoint_names(load_network(checkpoint, device="cpu").state_dict())
    assert loaded.keys() == official_state.keys()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in official_state.items())


@pytest.mark.parametrize(("given", "kind"), [("folder", "a folder"), ("/dev/zero", "not a regular file")])
def test_weights_named_on_a_folder_or_a_device_say_what_they_are(tmp_path, given, kind):
    """--weights /dev/zero or a folder was reported as 'weights file not found', the path being there (fifth
    hostile round)."""
    path = tmp_path if given == "folder" else Path(given)
    with pytest.raises(XMemPPError, match=f"the weights {path} are not a checkpoint file \\({kind}\\)"):
        load_network(path)


@pytest.mark.parametrize("device, named", [("bogus", "'bogus' is not one torch knows"), ("", "'' is not one torch knows"),
                                           ("cuda:-1", "'cuda:-1' is not one torch knows"),
                                           ("meta", "'meta' holds no data")])
def test_a_device_torch_does_not_know_is_refused_naming_it(device, named):
    with pytest.raises(XMemPPError, match=named):
        weights.resolve_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:7"])
def test_a_cuda_device_on_a_machine_without_one_is_refused_naming_it(device):
    with pytest.raises(XMemPPError, match=f"the device '{device}'"):
        weights.resolve_device(device)


def test_the_cpu_is_a_device():
    assert weights.resolve_device("cpu") == torch.device("cpu")


def test_environment_weights_on_a_device_say_what_they_are(monkeypatch):
    """XMEMPP_WEIGHTS=/dev/zero was reported as 'does not exist' (eighth hostile round)."""
    monkeypatch.setenv("XMEMPP_WEIGHTS", "/dev/zero")
    with pytest.raises(XMemPPError, match=re.escape("XMEMPP_WEIGHTS points to /dev/zero, which is not a checkpoint "
                                                    "file (not a regular file)")):
        weights.find_weights()


def test_a_truncated_checkpoint_is_named_as_truncated_without_torchs_words(checkpoint, tmp_path):
    """The first megabyte of a checkpoint showed torch's 'PytorchStreamReader failed ... This is an internal miniz
    error ... high likelihood ...' (eighth hostile round)."""
    truncated = tmp_path / "XMem.pth"
    truncated.write_bytes(checkpoint.read_bytes()[:1_000_000])
    with pytest.raises(XMemPPError) as refused:
        load_network(truncated)
    assert str(refused.value) == (f"{truncated} is not a readable PyTorch checkpoint: it is truncated or not a "
                                  "checkpoint (its zip archive cannot be read)")


@pytest.mark.parametrize("member", ["notes.txt", "folder/notes.txt"], ids=["at-its-top", "in-a-folder"])
def test_a_zip_that_is_no_checkpoint_is_named_without_torchs_words(tmp_path, member):
    """A zip of a text file as weights showed torch's "[enforce fail at inline_container.cc:180] . file in archive
    is not in a subdirectory" (thirtieth hostile round), or its 'Expected hasRecord("version") to be true'."""
    import zipfile

    path = tmp_path / "XMem.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, "my notes")
    with pytest.raises(XMemPPError) as refused:
        load_network(path)
    assert str(refused.value) == (f"{path} is not a readable PyTorch checkpoint: it is a zip archive, but it holds "
                                  "no checkpoint (a checkpoint's zip holds one folder with its data.pkl and version)")


def test_a_refused_pickle_gives_no_torch_warning(tmp_path, recwarn):
    """A pickle calling os.system printed torch's 'weights_only Unpickler might not support all instructions'
    before our refusal (eighth hostile round)."""
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(_SystemCall(), protocol=4))
    with pytest.raises(XMemPPError, match="never loaded"):
        load_network(path)
    assert [str(warning.message) for warning in recwarn] == []


class _SystemCall:
    def __reduce__(self):
        return (os.system, ("true",))


def test_a_file_of_zeros_is_named_as_no_checkpoint_without_torchs_advice(tmp_path):
    """A 500 MB sparse file as weights showed torch's 'Cannot use weights_only=True with files saved in the legacy
    .tar format. In PyTorch 2.6, we changed the default ...' (tenth hostile round)."""
    path = tmp_path / "zeros.pth"
    path.write_bytes(b"\0" * 4096)
    with pytest.raises(XMemPPError) as raised:
        load_network(path, "cpu")
    assert "it is in PyTorch's old .tar format, or not a checkpoint at all" in str(raised.value)
    assert "weights_only" not in str(raised.value)


def test_out_of_memory_while_reading_the_weights_is_not_a_damaged_file(tmp_path, monkeypatch):
    """Under ulimit -v, torch's "[enforce fail ...] can't allocate memory" read '... is not a readable PyTorch
    checkpoint' of a sound file (twenty-first hostile round)."""
    from xmempp.errors import OutOfMemoryError
    from xmempp.model import weights as weights_module

    path = tmp_path / "XMem.pth"
    torch.save({"w": torch.zeros(2)}, path)

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(weights_module.torch, "load", no_memory)
    with pytest.raises(OutOfMemoryError, match=f"^out of memory while reading the weights {path}"):
        weights_module.read_checkpoint(path)


def test_a_url_given_as_the_weights_is_said_to_be_one():
    """`--weights https://example.com/XMem.pth` was "weights file not found: https:/example.com/XMem.pth", one slash
    dropped, as if a file were missing (fifty-ninth hostile round, F4)."""
    from xmempp.errors import InputNotFoundError
    from xmempp.model.weights import find_weights

    with pytest.raises(InputNotFoundError, match=r"^the weights file https://example\.com/XMem\.pth is a URL: "
                                                 r"xmempp reads the weights from a file"):
        find_weights("https://example.com/XMem.pth")


def test_a_url_is_said_to_be_one_by_the_command_line_the_python_api_and_xmempp_weights(tmp_path, monkeypatch,
                                                                                       capsys):
    """The fifty-ninth round's words never reached a user: the command line and the Python API made a Path of the
    URL first, which drops one of its slashes, and XMEMPP_WEIGHTS was not looked at (sixtieth hostile round, F1)."""
    from xmempp import api
    from xmempp.cli import main
    from xmempp.errors import InputNotFoundError
    from xmempp.model.weights import find_weights

    url = "https://example.com/XMem.pth"
    (tmp_path / "frames").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(SystemExit):
        main(["run", "--images", str(tmp_path / "frames"), "--masks", str(tmp_path / "masks"), "--output",
              str(tmp_path / "out"), "--weights", url])
    assert f"the weights file {url} is a URL" in capsys.readouterr().err
    with pytest.raises(InputNotFoundError, match=f"^the weights file {url} is a URL"):
        api.run_on_video(tmp_path / "frames", tmp_path / "masks", tmp_path / "out", weights=url)
    with pytest.raises(InputNotFoundError, match=f"^the weights file {url} is a URL"):
        api.select_k_next_best_annotation_candidates(tmp_path / "frames", tmp_path / "masks", weights=url)
    monkeypatch.setenv("XMEMPP_WEIGHTS", "file:///nowhere/XMem.pth")
    with pytest.raises(InputNotFoundError, match="^XMEMPP_WEIGHTS file:///nowhere/XMem.pth is a URL"):
        find_weights()
