"""The engine stays free of UI code."""

import subprocess
import sys


def test_importing_the_engine_never_imports_gradio():
    code = "import sys, xmempp, xmempp.cli, xmempp.api; assert 'gradio' not in sys.modules, 'gradio imported'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
