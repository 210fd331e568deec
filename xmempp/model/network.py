"""The XMem network: key encoder, value encoder, key projection and decoder, as stage methods.

The network holds weights only. Memory, hidden state and frame bookkeeping live in the session, so one
network can serve many videos (and many app users) at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xmempp.model.modules import (
    FeatureFusionBlock,
    HiddenReinforcer,
    HiddenUpdater,
    UpsampleBlock,
)


class KeyEncoder(nn.Module):
    """ResNet-50 up to layer3 on the RGB frame: features at strides 16, 8 and 4."""

    def __init__(self):
        super().__init__()
        import torchvision  # only where the network is built: importing it costs seconds

        resnet = torchvision.models.resnet50(weights=None)
        self.conv1, self.bn1, self.maxpool = resnet.conv1, resnet.bn1, resnet.maxpool
        self.layer1, self.layer2, self.layer3 = resnet.layer1, resnet.layer2, resnet.layer3

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(F.relu(self.bn1(self.conv1(image))))
        f4 = self.layer1(x)  # (B, 256, H/4, W/4)
        f8 = self.layer2(f4)  # (B, 512, H/8, W/8)
        f16 = self.layer3(f8)  # (B, 1024, H/16, W/16)
        return f16, f8, f4


class KeyProjection(nn.Module):
    """Projects stride-16 features to the key, its shrinkage (>= 1) and its selection (0..1)."""

    def __init__(self, in_dim: int, key_dim: int):
        super().__init__()
        self.key_proj = nn.Conv2d(in_dim, key_dim, 3, padding=1)
        self.d_proj = nn.Conv2d(in_dim, 1, 3, padding=1)
        self.e_proj = nn.Conv2d(in_dim, key_dim, 3, padding=1)

    def forward(self, f16: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        shrinkage = self.d_proj(f16) ** 2 + 1
        selection = torch.sigmoid(self.e_proj(f16))
        return self.key_proj(f16), shrinkage, selection


class ValueEncoder(nn.Module):
    """ResNet-18 up to layer3 on the frame plus two mask channels (this object, all other objects)."""

    def __init__(self, value_dim: int, hidden_dim: int):
        super().__init__()
        import torchvision

        resnet = torchvision.models.resnet18(weights=None)
        self.conv1 = nn.Conv2d(5, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1, self.maxpool = resnet.bn1, resnet.maxpool
        self.layer1, self.layer2, self.layer3 = resnet.layer1, resnet.layer2, resnet.layer3
        self.fuser = FeatureFusionBlock(1024, 256, value_dim, value_dim)
        self.hidden_reinforce = HiddenReinforcer(value_dim, hidden_dim)

    def forward(self, image: torch.Tensor, f16: torch.Tensor, hidden: torch.Tensor, masks: torch.Tensor,
                deep_update: bool) -> tuple[torch.Tensor, torch.Tensor]:
        batch, objects = masks.shape[:2]
        others = torch.zeros_like(masks) if objects == 1 else torch.cat(
            [masks[:, [j for j in range(objects) if j != i]].sum(dim=1, keepdim=True) for i in range(objects)], dim=1)
        per_object = torch.cat([image.unsqueeze(1).expand(-1, objects, -1, -1, -1),
                                torch.stack([masks, others], dim=2)], dim=2).flatten(0, 1)
        g = self.maxpool(F.relu(self.bn1(self.conv1(per_object))))
        g = self.layer3(self.layer2(self.layer1(g)))
        g = self.fuser(f16, g.view(batch, objects, *g.shape[1:]))
        if deep_update:
            hidden = self.hidden_reinforce(g, hidden)
        return g, hidden


class Decoder(nn.Module):
    """Turns the memory readout into per-object logits at full resolution and updates the hidden state."""

    def __init__(self, value_dim: int, hidden_dim: int):
        super().__init__()
        self.fuser = FeatureFusionBlock(1024, value_dim + hidden_dim, 512, 512)
        self.hidden_update = HiddenUpdater((512, 256, 256 + 1), 256, hidden_dim)
        self.up_16_8 = UpsampleBlock(512, 512, 256)
        self.up_8_4 = UpsampleBlock(256, 256, 256)
        self.pred = nn.Conv2d(256, 1, 3, padding=1)

    def forward(self, f16: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor, hidden: torch.Tensor,
                readout: torch.Tensor, update_hidden: bool) -> tuple[torch.Tensor, torch.Tensor]:
        batch, objects = readout.shape[:2]
        g16 = self.fuser(f16, torch.cat([readout, hidden], dim=2))
        g8 = self.up_16_8(f8, g16)
        g4 = self.up_8_4(f4, g8)
        logits = self.pred(F.relu(g4.flatten(0, 1)))
        if update_hidden:
            g4 = torch.cat([g4, logits.view(batch, objects, 1, *logits.shape[-2:])], dim=2)
            hidden = self.hidden_update(g16, g8, g4, hidden)
        logits = F.interpolate(logits, scale_factor=4, mode="bilinear", align_corners=False)
        return hidden, logits.view(batch, objects, *logits.shape[-2:])


def aggregate(prob: torch.Tensor, dim: int) -> torch.Tensor:
    """Soft aggregation (from STM): per-object probabilities -> a distribution with background first."""
    with_background = torch.cat([torch.prod(1 - prob, dim=dim, keepdim=True), prob], dim).clamp(1e-7, 1 - 1e-7)
    logits = torch.log(with_background / (1 - with_background))
    return F.softmax(logits, dim=dim)


class XMem(nn.Module):
    """XMem with the layout of the official `XMem.pth` (62.2M parameters)."""

    def __init__(self, key_dim: int = 64, value_dim: int = 512, hidden_dim: int = 64):
        super().__init__()
        self.key_dim, self.value_dim, self.hidden_dim = key_dim, value_dim, hidden_dim
        self.key_encoder = KeyEncoder()
        self.value_encoder = ValueEncoder(value_dim, hidden_dim)
        self.key_proj = KeyProjection(1024, key_dim)
        self.decoder = Decoder(value_dim, hidden_dim)
        # The checkpoint `load_network` read (absolute): an input of every run with this network, never written over.
        self.loaded_from: str | None = None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode_key(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Encode normalised frames.

        Args:
            image: (B, 3, H, W), H and W multiples of 16.
        Returns:
            key (B, Ck, H/16, W/16), shrinkage (B, 1, H/16, W/16), selection (B, Ck, H/16, W/16),
            and the image features f16 (B, 1024, H/16, W/16), f8 (B, 512, H/8, W/8), f4 (B, 256, H/4, W/4).
        """
        f16, f8, f4 = self.key_encoder(image)
        key, shrinkage, selection = self.key_proj(f16)
        return key, shrinkage, selection, f16, f8, f4

    def encode_value(self, image: torch.Tensor, f16: torch.Tensor, hidden: torch.Tensor, masks: torch.Tensor,
                     deep_update: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a frame with its object masks into memory values.

        Args:
            image: (B, 3, H, W); f16: (B, 1024, H/16, W/16); hidden: (B, N, Ch, H/16, W/16);
            masks: (B, N, H, W) object probabilities without background.
        Returns:
            value (B, N, Cv, H/16, W/16) and the hidden state, deep-updated when `deep_update`.
        """
        return self.value_encoder(image, f16, hidden, masks, deep_update)

    def segment(self, f16: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor, readout: torch.Tensor,
                hidden: torch.Tensor, update_hidden: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode a memory readout (B, N, Cv, H/16, W/16) into probabilities (B, N + 1, H, W), background first.

        Returns the hidden state (updated when `update_hidden`) and the probabilities.
        """
        hidden, logits = self.decoder(f16, f8, f4, hidden, readout, update_hidden)
        return hidden, aggregate(torch.sigmoid(logits), dim=1)
