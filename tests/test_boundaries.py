"""The engine stays free of UI code."""

import subprocess
import sys


def test_importing_the_engine_never_imports_gradio():
    code = "import sys, xmempp, xmempp.cli, xmempp.api; assert 'gradio' not in sys.modules, 'gradio imported'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_ray_and_matplotlib_are_imported_only_when_used():
    code = ("import sys, xmempp, xmempp.cli, xmempp.batch, xmempp.evaluate; "
            "loaded = {'ray', 'matplotlib'} & set(sys.modules); assert not loaded, loaded")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
