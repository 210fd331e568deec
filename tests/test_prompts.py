"""Click prompts with a small random-weight SAM 2 saved by a fixture (nothing is downloaded; masks mean nothing)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from xmempp.errors import XMemPPError
from xmempp.prompts import Box, Point, PromptModel, PromptSession, save_random_model


@pytest.fixture(scope="module")
def prompt_model(sam_model_folder) -> PromptModel:
    return PromptModel.load(sam_model_folder, device="cpu", offline=True)


def random_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def captured_model_inputs(prompt_model: PromptModel) -> tuple[list[dict], object]:
    """Record the keyword arguments of every forward call of the SAM model."""
    calls: list[dict] = []
    handle = prompt_model.model.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(kwargs), with_kwargs=True)
    return calls, handle


def test_points_reach_the_model_scaled_from_frame_pixels_to_its_input_size(prompt_model):
    calls, handle = captured_model_inputs(prompt_model)
    try:
        PromptSession(prompt_model).segment(random_frame(37, 91), [Point(45, 10), Point(90, 36, positive=False)])
    finally:
        handle.remove()
    size = prompt_model.input_size
    expected = torch.tensor([[45 * size / 91, 10 * size / 37], [90 * size / 91, 36 * size / 37]])
    torch.testing.assert_close(calls[0]["input_points"][0, 0], expected)
    assert calls[0]["input_labels"][0, 0].tolist() == [1, 0]


def test_a_box_reaches_the_model_scaled_with_its_corners_ordered(prompt_model):
    calls, handle = captured_model_inputs(prompt_model)
    try:
        PromptSession(prompt_model).segment(random_frame(40, 80), box=Box(60, 30, 20, 10))
    finally:
        handle.remove()
    size = prompt_model.input_size
    expected = torch.tensor([20 * size / 80, 10 * size / 40, 60 * size / 80, 30 * size / 40])
    torch.testing.assert_close(calls[0]["input_boxes"][0, 0], expected)
    assert "input_points" not in calls[0]


@pytest.mark.parametrize("height, width", [(37, 91), (101, 33), (64, 64), (1, 5)])
def test_the_mask_has_the_frame_size(prompt_model, height, width):
    mask = PromptSession(prompt_model).segment(random_frame(height, width), [Point(width // 2, height // 2)])
    assert mask.shape == (height, width)
    assert mask.dtype == bool


def test_points_and_a_box_together_give_one_mask(prompt_model):
    mask = PromptSession(prompt_model).segment(random_frame(48, 64), [Point(30, 20)], Box(10, 10, 50, 40))
    assert mask.shape == (48, 64)


def test_the_embedding_is_computed_once_per_frame(prompt_model, monkeypatch):
    computed = []
    embed = prompt_model.embed
    monkeypatch.setattr(prompt_model, "embed", lambda frame: computed.append(frame.shape) or embed(frame))
    session = PromptSession(prompt_model)
    first, second = random_frame(40, 60, seed=1), random_frame(40, 60, seed=2)
    for clicks in ([Point(5, 5)], [Point(5, 5), Point(30, 20)], [Point(5, 5), Point(30, 20, positive=False)]):
        session.segment(first, clicks)
    assert len(computed) == 1
    session.segment(second, [Point(5, 5)])
    session.segment(second.copy(), [Point(9, 9)])  # same pixels in another array: same frame
    assert len(computed) == 2


def test_each_session_keeps_its_own_embedding(prompt_model, monkeypatch):
    computed = []
    embed = prompt_model.embed
    monkeypatch.setattr(prompt_model, "embed", lambda frame: computed.append(1) or embed(frame))
    alice, bob = PromptSession(prompt_model), PromptSession(prompt_model)
    alice.segment(random_frame(30, 30, seed=1), [Point(3, 3)])
    bob.segment(random_frame(30, 30, seed=2), [Point(3, 3)])
    alice.segment(random_frame(30, 30, seed=1), [Point(9, 9)])
    assert len(computed) == 2


def test_no_prompt_gives_an_empty_mask_without_running_the_model(prompt_model, monkeypatch):
    monkeypatch.setattr(prompt_model, "embed", lambda frame: pytest.fail("embedding computed without a prompt"))
    mask = PromptSession(prompt_model).segment(random_frame(20, 30))
    assert mask.shape == (20, 30) and not mask.any()


def test_a_click_outside_the_frame_is_refused_with_the_frame_size(prompt_model):
    with pytest.raises(XMemPPError, match=r"\(120, 5\) is outside the 100x50 frame"):
        PromptSession(prompt_model).segment(random_frame(50, 100), [Point(120, 5)])


def test_a_frame_that_is_not_rgb_is_refused(prompt_model):
    with pytest.raises(XMemPPError, match="RGB frame"):
        PromptSession(prompt_model).segment(np.zeros((20, 30), np.uint8), [Point(1, 1)])


def one_line_error(source, **kwargs) -> str:
    with pytest.raises(XMemPPError) as error:
        PromptModel.load(source, device="cpu", offline=True, **kwargs)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_missing_model_folder_is_named(tmp_path):
    assert one_line_error(tmp_path / "nowhere" / "sam") == f"SAM model folder not found: {tmp_path / 'nowhere' / 'sam'}"


def test_a_folder_without_safetensors_weights_is_named(tmp_path, sam_model_folder):
    folder = tmp_path / "sam"
    folder.mkdir()
    (folder / "config.json").write_text((sam_model_folder / "config.json").read_text())
    message = one_line_error(folder)
    assert str(folder) in message and "model.safetensors" in message


def test_damaged_weights_are_named(tmp_path, sam_model_folder):
    folder = tmp_path / "sam"
    folder.mkdir()
    for item in sam_model_folder.iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    message = one_line_error(folder)
    assert message.startswith(f"SAM model folder {folder} cannot be loaded")


def test_weights_of_another_shape_are_named(tmp_path):
    from tests.conftest import small_sam_config

    folder = save_random_model(tmp_path / "sam", small_sam_config())
    wider = small_sam_config()
    wider.mask_decoder_config.mlp_dim = 96
    other = save_random_model(tmp_path / "other", wider)
    (folder / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    assert one_line_error(folder).startswith(f"SAM model folder {folder} cannot be loaded")


def test_a_missing_tensor_is_named(tmp_path):
    from safetensors.torch import load_file, save_file

    from tests.conftest import small_sam_config

    folder = save_random_model(tmp_path / "sam", small_sam_config())
    tensors = load_file(folder / "model.safetensors")
    del tensors["mask_decoder.iou_token.weight"]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    assert one_line_error(folder) == f"SAM model {folder}: missing key mask_decoder.iou_token.weight"


def test_a_hub_id_missing_from_the_cache_offline_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    message = one_line_error("someone/no-such-sam-model")
    assert message.startswith("SAM model someone/no-such-sam-model is neither a folder nor loadable from "
                              "the Hugging Face cache (offline: XMEMPP_OFFLINE=1, or the hub did not answer)")


def test_xmempp_offline_reads_only_local_files(tmp_path, monkeypatch):
    monkeypatch.setenv("XMEMPP_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(XMemPPError, match=r"XMEMPP_OFFLINE=1"):
        PromptModel.load("someone/no-such-sam-model", device="cpu")


def test_a_folder_in_the_hubs_video_layout_loads_as_the_image_model(tmp_path):
    """facebook/sam2.1-hiera-* on the hub are saved as `sam2_video` models with a Sam2VideoProcessor."""
    from transformers import (
        Sam2ImageProcessor,
        Sam2VideoConfig,
        Sam2VideoModel,
        Sam2VideoProcessor,
        Sam2VideoVideoProcessor,
    )

    from tests.conftest import small_sam_config

    image = small_sam_config()
    size = image.prompt_encoder_config.image_size
    config = Sam2VideoConfig(vision_config=image.vision_config.to_dict(),
                             prompt_encoder_config=image.prompt_encoder_config.to_dict(),
                             mask_decoder_config=image.mask_decoder_config.to_dict(), image_size=size,
                             memory_attention_hidden_size=32, memory_attention_num_layers=1,
                             memory_attention_feed_forward_hidden_size=32, memory_encoder_hidden_size=32,
                             memory_encoder_output_channels=8, mask_downsampler_embed_dim=32,
                             memory_fuser_embed_dim=32, memory_fuser_intermediate_dim=32,
                             memory_attention_rope_feat_sizes=[size // 16, size // 16])
    Sam2VideoModel(config).save_pretrained(tmp_path / "sam")
    pixels = {"height": size, "width": size}
    Sam2VideoProcessor(image_processor=Sam2ImageProcessor(size=pixels),
                       video_processor=Sam2VideoVideoProcessor(size=pixels)).save_pretrained(tmp_path / "sam")
    model = PromptModel.load(tmp_path / "sam", device="cpu", offline=True)
    assert PromptSession(model).segment(random_frame(30, 50), [Point(10, 10)]).shape == (30, 50)


def test_importing_the_prompts_module_does_not_import_transformers():
    code = "import sys, xmempp.prompts; sys.exit('transformers' in sys.modules or 'gradio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
