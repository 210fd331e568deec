"""Deciding at once whether the download hosts answer, so that an offline start never waits on retries."""

from __future__ import annotations

import socket
import time

from xmempp.online import reachable


def test_a_listening_host_is_reachable_and_a_closed_port_is_not():
    with socket.create_server(("127.0.0.1", 0)) as server:
        open_port = server.getsockname()[1]
        with socket.create_server(("127.0.0.1", 0)) as closed:
            closed_port = closed.getsockname()[1]
        answers = reachable([f"http://127.0.0.1:{open_port}/x", f"http://127.0.0.1:{closed_port}/x"])
    assert list(answers.values()) == [True, False]


def test_hosts_that_never_answer_are_given_up_together_at_the_deadline(monkeypatch):
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)

    def hang(address, timeout=None):
        time.sleep(5)
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    started = time.perf_counter()
    answers = reachable(["https://github.com/a", "https://huggingface.co/b"], deadline=0.5)
    assert answers == {"https://github.com/a": False, "https://huggingface.co/b": False}
    assert time.perf_counter() - started < 1.0


def test_a_configured_proxy_is_asked_instead_of_the_host(monkeypatch):
    asked = []

    def record(address, timeout=None):
        asked.append(address)
        raise OSError("refused")

    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.setattr(socket, "create_connection", record)
    reachable(["https://huggingface.co/x"])
    assert asked == [("proxy.example", 3128)]
