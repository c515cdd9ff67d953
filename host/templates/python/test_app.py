"""Runs the built component with `sundial plugin run` (the real sandbox).

Build first (`sundial plugin build`), then `python3 -m unittest` in this folder. The
`sundial` binary is taken from $SUNDIAL, else from PATH.
"""

import json
import os
import subprocess
import unittest

WASM = os.path.join(os.path.dirname(__file__), "build", "{{name}}.wasm")
SUNDIAL = os.environ.get("SUNDIAL", "sundial")


def run(params: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SUNDIAL, "plugin", "run", WASM, "--params", json.dumps(params), "--memory", "256MiB"],
        capture_output=True,
        text=True,
    )


class Greeting(unittest.TestCase):
    def test_greets_by_name(self) -> None:
        out = run({"name": "Ada"})
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout), {"greeting": "hello, Ada"})
        self.assertIn("greeting Ada", out.stderr)

    def test_refuses_a_name_that_is_not_a_string(self) -> None:
        out = run({"name": 7})
        self.assertEqual(out.returncode, 1)
        self.assertIn("params.name must be a non-empty string", out.stderr)


if __name__ == "__main__":
    unittest.main()
