# A package, so that pytest puts the repository root on sys.path whether it starts as `pytest` or
# `python -m pytest`: tests import `xmempp` and `tests.helpers` the same way both times.
