"""The engine never imports Django."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

ENGINE = pathlib.Path(__file__).resolve().parents[2] / "flows" / "engine"


def test_engine_imports_and_runs_with_django_absent():
    script = textwrap.dedent(
        """
        import sys, asyncio

        class NoDjango:
            def find_spec(self, name, path=None, target=None):
                if name == "django" or name.startswith("django."):
                    raise ImportError("django is blocked for this test")

        sys.meta_path.insert(0, NoDjango())
        from flows.engine import FlowEngine, START, END
        from flows.engine.checkpointers import InMemoryCheckpointer
        flow = FlowEngine(dict, InMemoryCheckpointer())
        flow.add_node("a", lambda s: {"ok": True}).add_edge(START, "a").add_edge("a", END)
        print(asyncio.run(flow.invoke({}, session_id="s")))
        assert not any(m == "django" or m.startswith("django.") for m in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "{'ok': True}" in result.stdout


def test_no_engine_module_mentions_django_imports():
    offenders = [
        str(path) for path in ENGINE.rglob("*.py")
        if any(line.strip().startswith(("import django", "from django")) for line in path.read_text().splitlines())
    ]
    assert offenders == []
