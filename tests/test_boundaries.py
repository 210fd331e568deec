"""The engine stays free of UI code; the test suite runs however pytest is started."""

import subprocess
import sys
from pathlib import Path


def test_importing_the_engine_never_imports_gradio():
    code = "import sys, xmempp, xmempp.cli, xmempp.api; assert 'gradio' not in sys.modules, 'gradio imported'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_tests_collect_without_the_repository_on_sys_path():
    """`pytest` (unlike `python -m pytest`) does not put the working directory on sys.path: -P does the same."""
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-P", "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                             "tests/test_session.py"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]


def test_an_xmempp_error_is_not_a_value_error():
    """A ValueError from inside the engine is a bug; only XMemPPError is shown to people as their problem."""
    from xmempp.errors import XMemPPError

    assert not issubclass(XMemPPError, ValueError)


def test_importing_xmempp_loads_no_heavy_library():
    code = ("import sys, xmempp; heavy = {'torch', 'torchvision', 'pandas', 'cv2', 'PIL'} & set(sys.modules); "
            "assert not heavy, sorted(heavy)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_the_commands_never_import_torchvision_pandas_or_opencv_up_front():
    """`run` and `suggest` import xmempp.cli and xmempp.api; pandas comes with run's table, OpenCV with masks kept
    in memory, torchvision only when the network is built (suggestions with valid keys never build it)."""
    code = ("import sys, xmempp.cli, xmempp.api, xmempp.session; heavy = {'torchvision', 'pandas', 'cv2'} & "
            "set(sys.modules); assert not heavy, sorted(heavy)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_ray_and_matplotlib_are_imported_only_when_used():
    code = ("import sys, xmempp, xmempp.cli, xmempp.batch, xmempp.evaluate; "
            "loaded = {'ray', 'matplotlib'} & set(sys.modules); assert not loaded, loaded")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
