"""Object masks, one module per job: `files` (reading and writing PNGs), `ids` (object ids <-> network
channels), `drawing` (palette and overlays). The names below are re-exported for code written before the split."""

from xmempp.masks.drawing import davis_palette, overlay
from xmempp.masks.files import MaskReader, mask_image, resize_ids, write_mask
from xmempp.masks.ids import MAX_OBJECTS, ObjectManager, first_argmax

__all__ = ["MAX_OBJECTS", "MaskReader", "ObjectManager", "davis_palette", "first_argmax", "mask_image", "overlay",
           "resize_ids", "write_mask"]
