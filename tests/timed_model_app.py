"""`python app.py ARGUMENTS` whose network notes when it works, for the API's cancel tests (tests/test_api_cancel.py).

Each call of the network's stages (`encode_key`, `encode_value`, `segment`) appends a line to $XMEMPP_MODEL_LOG:
the stage, when it started and ended (time.time(), comparable with the test's clock) and the input's shape (which
tells two videos apart). `encode_key`, once a frame, first sleeps $XMEMPP_MODEL_DELAY seconds, as a larger model
or frame would take: the test can then stop a call in the middle of a run, and see two runs overlap if they did.
"""

import os
import runpy
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xmempp.model.network import XMem  # noqa: E402 (after the project's folder is on the path)

LOG = Path(os.environ["XMEMPP_MODEL_LOG"])
DELAY_S = float(os.environ.get("XMEMPP_MODEL_DELAY", "0"))
_writing = threading.Lock()


def noted(stage):
    def stage_noting_when_it_works(self, image, *args, **kwargs):
        started = time.time()
        try:
            if stage.__name__ == "encode_key":
                time.sleep(DELAY_S)
            return stage(self, image, *args, **kwargs)
        finally:
            with _writing, LOG.open("a") as log:
                log.write(f"{stage.__name__} {started:.4f} {time.time():.4f} {'x'.join(map(str, image.shape))}\n")

    return stage_noting_when_it_works


for name in ("encode_key", "encode_value", "segment"):
    setattr(XMem, name, noted(getattr(XMem, name)))

sys.argv = [str(ROOT / "app.py"), *sys.argv[1:]]
runpy.run_path(str(ROOT / "app.py"), run_name="__main__")
