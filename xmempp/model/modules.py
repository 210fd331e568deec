"""Building blocks of the XMem network.

Tensors named `g` carry one feature map per object: (B, N, C, H, W). Every block here treats the N objects
independently, so the network is equivariant to object order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def resize_per_object(g: torch.Tensor, scale: float, mode: str) -> torch.Tensor:
    """Resize (B, N, C, H, W) by `scale` on H and W."""
    batch, objects = g.shape[:2]
    align = False if mode == "bilinear" else None
    out = F.interpolate(g.flatten(0, 1), scale_factor=scale, mode=mode, align_corners=align)
    return out.view(batch, objects, *out.shape[1:])


def broadcast_to_objects(x: torch.Tensor, num_objects: int) -> torch.Tensor:
    """(B, C, H, W) image features -> (B, N, C, H, W), shared by every object."""
    return x.unsqueeze(1).expand(-1, num_objects, -1, -1, -1)


class ObjectConv2d(nn.Conv2d):
    """A Conv2d applied to each object's feature map: (B, N, C, H, W) -> (B, N, C', H', W')."""

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        batch, objects = g.shape[:2]
        out = super().forward(g.flatten(0, 1))
        return out.view(batch, objects, *out.shape[1:])


class ObjectResBlock(nn.Module):
    """Pre-activation residual block on per-object features."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.downsample = None if in_dim == out_dim else ObjectConv2d(in_dim, out_dim, 3, padding=1)
        self.conv1 = ObjectConv2d(in_dim, out_dim, 3, padding=1)
        self.conv2 = ObjectConv2d(out_dim, out_dim, 3, padding=1)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(F.relu(g))))
        shortcut = g if self.downsample is None else self.downsample(g)
        return out + shortcut


class ChannelGate(nn.Module):
    """CBAM channel attention: an MLP on average- and max-pooled features."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        # Index layout (Flatten, Linear, ReLU, Linear) matches the checkpoint's `mlp.1` / `mlp.3`.
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(channels, channels // reduction), nn.ReLU(),
                                 nn.Linear(channels // reduction, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled_avg = F.adaptive_avg_pool2d(x, 1)
        pooled_max = F.adaptive_max_pool2d(x, 1)
        scale = torch.sigmoid(self.mlp(pooled_avg) + self.mlp(pooled_max))
        return x * scale[:, :, None, None]


class SpatialConv(nn.Module):
    """Holds the 7x7 conv under the checkpoint's name `spatial.conv`."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SpatialGate(nn.Module):
    """CBAM spatial attention from channel-wise max and mean."""

    def __init__(self):
        super().__init__()
        self.spatial = SpatialConv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.max(dim=1, keepdim=True)[0], x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    """Convolutional block attention (channel, then spatial)."""

    def __init__(self, channels: int):
        super().__init__()
        self.ChannelGate = ChannelGate(channels)  # attribute names are the checkpoint's
        self.SpatialGate = SpatialGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.SpatialGate(self.ChannelGate(x))


class FeatureFusionBlock(nn.Module):
    """Fuses image features x (B, Cx, H, W) into per-object features g (B, N, Cg, H, W)."""

    def __init__(self, x_dim: int, g_dim: int, mid_dim: int, out_dim: int):
        super().__init__()
        self.block1 = ObjectResBlock(x_dim + g_dim, mid_dim)
        self.attention = CBAM(mid_dim)
        self.block2 = ObjectResBlock(mid_dim, out_dim)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        batch, objects = g.shape[:2]
        g = self.block1(torch.cat([broadcast_to_objects(x, objects), g], dim=2))
        attended = self.attention(g.flatten(0, 1)).view(batch, objects, *g.shape[2:])
        return self.block2(g + attended)


def gated_update(values: torch.Tensor, hidden: torch.Tensor, hidden_dim: int) -> torch.Tensor:
    """XMem's GRU variant: the candidate value is computed before (not after) the forget gate."""
    forget_gate = torch.sigmoid(values[:, :, :hidden_dim])
    update_gate = torch.sigmoid(values[:, :, hidden_dim:hidden_dim * 2])
    new_value = torch.tanh(values[:, :, hidden_dim * 2:])
    return forget_gate * hidden * (1 - update_gate) + update_gate * new_value


class HiddenUpdater(nn.Module):
    """Updates the sensory memory from the decoder's multi-scale features (every frame)."""

    def __init__(self, g_dims: tuple[int, int, int], mid_dim: int, hidden_dim: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.g16_conv = ObjectConv2d(g_dims[0], mid_dim, 1)
        self.g8_conv = ObjectConv2d(g_dims[1], mid_dim, 1)
        self.g4_conv = ObjectConv2d(g_dims[2], mid_dim, 1)
        self.transform = ObjectConv2d(mid_dim + hidden_dim, hidden_dim * 3, 3, padding=1)

    def forward(self, g16: torch.Tensor, g8: torch.Tensor, g4: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        g = (self.g16_conv(g16) + self.g8_conv(resize_per_object(g8, 1 / 2, "area"))
             + self.g4_conv(resize_per_object(g4, 1 / 4, "area")))
        values = self.transform(torch.cat([g, hidden], dim=2))
        return gated_update(values, hidden, self.hidden_dim)


class HiddenReinforcer(nn.Module):
    """Deep update of the sensory memory from a memory frame's value features."""

    def __init__(self, g_dim: int, hidden_dim: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.transform = ObjectConv2d(g_dim + hidden_dim, hidden_dim * 3, 3, padding=1)

    def forward(self, g: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        values = self.transform(torch.cat([g, hidden], dim=2))
        return gated_update(values, hidden, self.hidden_dim)


class UpsampleBlock(nn.Module):
    """Doubles the resolution of per-object features and adds a skip connection from the key encoder."""

    def __init__(self, skip_dim: int, up_dim: int, out_dim: int):
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_dim, up_dim, 3, padding=1)
        self.out_conv = ObjectResBlock(up_dim, out_dim)

    def forward(self, skip: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        skip = self.skip_conv(skip)
        g = resize_per_object(g, 2, "bilinear")
        return self.out_conv(broadcast_to_objects(skip, g.shape[1]) + g)
