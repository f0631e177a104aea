"""Talk to nftables inside a network namespace: run one atomic script, list one table.

Owns the way swarmlite reaches nftables. Preferred is libnftables through Debian's
``python3-nftables`` binding (ctypes over ``libnftables.so.1``); when that binding is not
importable from this interpreter it is loaded from the system's dist-packages directory as
that one package, without adding the directory to ``sys.path`` (which would shadow this
interpreter's own packages). Without the binding, the ``nft`` command is run instead. Either
way the work happens on a thread inside the namespace (see ``ip.run_in_netns``), so the
netlink socket, and a child ``nft`` process, live there.

A script is nft's own syntax and is applied as one transaction: all of it, or nothing. (The
JSON input of nftables 1.0.6 cannot declare ``typeof`` maps, which the routing mesh needs.)
Listings come back as nft's JSON objects.

Does not own what the rules mean: vip.py does. Every failure (no nftables at all, a rule the
kernel refuses, a missing namespace) becomes NetworkSetupFailure naming what was being done
(the table) and carrying nft's own message.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

from swarmlite.errors import NetworkSetupFailure
from swarmlite.log import kv
from swarmlite.network.ip import describe, run_in_netns

log = logging.getLogger(__name__)

Backend = Literal["auto", "lib", "cli"]

# Where Debian installs python3-nftables, for interpreters that do not see it on sys.path.
_SYSTEM_DIST_DIRS = ("/usr/lib/python3/dist-packages",)
_HINT = "install nftables (and python3-nftables for the library): apt-get install nftables"
_ENOENT_TEXT = "No such file or directory"


@functools.cache
def _binding() -> Any | None:
    """The ``nftables`` module of python3-nftables, or None when it cannot be loaded."""
    try:
        import nftables  # type: ignore[import-not-found]

        return nftables
    except ImportError:
        pass
    for base in _SYSTEM_DIST_DIRS:
        package = Path(base) / "nftables"
        init = package / "__init__.py"
        if not init.is_file():
            continue
        spec = importlib.util.spec_from_file_location(
            "nftables", init, submodule_search_locations=[str(package)]
        )
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        # Registered before running it: the package imports its submodule relatively.
        sys.modules["nftables"] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # a broken or foreign copy: fall back to the command
            del sys.modules["nftables"]
            log.warning("cannot load python3-nftables %s", kv(path=package, error=exc))
            continue
        return module
    return None


@functools.cache
def _library_usable() -> bool:
    module = _binding()
    if module is None:
        return False
    try:
        module.Nftables()  # loads libnftables.so.1
    except OSError as exc:
        log.warning("libnftables is not usable %s", kv(error=exc))
        return False
    return True


def available_backend(preferred: Backend = "auto") -> Literal["lib", "cli"]:
    """Which way to nftables this process will use; NetworkSetupFailure if there is none."""
    if preferred in ("auto", "lib") and _library_usable():
        return "lib"
    if preferred == "lib":
        raise NetworkSetupFailure("python3-nftables (libnftables) is not available", hint=_HINT)
    if shutil.which("nft") is None:
        raise NetworkSetupFailure("nftables is not installed (no nft command)", hint=_HINT)
    return "cli"


class Nft:
    """nftables in one namespace (None: this process's own). Calls block: use a thread."""

    def __init__(self, netns: str | None = None, *, backend: Backend = "auto") -> None:
        self.netns = netns
        self.backend = available_backend(backend)

    def run(self, script: str, *, what: str) -> None:
        """Apply `script` (nft syntax, one command a line) as one transaction.

        `what` names the object in error messages: "table ip swarmlite". A refusal carries
        nft's whole message and the script in its details (libnftables may point at the
        wrong line of a script; the columns are right).
        """
        rc, _, error = self._call(script, json_output=False, what=what)
        if rc != 0:
            failure = self._failure(what, error)
            failure.details["script"] = script
            raise failure

    def list_table(self, family: str, name: str) -> list[dict[str, Any]] | None:
        """The objects of table `family name` as nft's JSON shows them; None when absent."""
        what = f"table {family} {name}"
        rc, output, error = self._call(f"list table {family} {name}", json_output=True, what=what)
        if rc != 0:
            if _ENOENT_TEXT in error:
                return None
            raise self._failure(what, error)
        try:
            objects = json.loads(output)["nftables"]
        except (ValueError, KeyError, TypeError) as exc:
            raise NetworkSetupFailure(
                f"nftables: {what}: unreadable listing in {describe(self.netns)}"
            ) from exc
        return [obj for obj in objects if isinstance(obj, dict) and "metainfo" not in obj]

    def delete_table(self, family: str, name: str) -> bool:
        """Remove the table if it exists; True when it did."""
        what = f"table {family} {name}"
        rc, _, error = self._call(f"delete table {family} {name}", json_output=False, what=what)
        if rc == 0:
            return True
        if _ENOENT_TEXT in error:
            return False
        raise self._failure(what, error)

    # ----------------------------------------------------------------------- internals

    def _call(self, text: str, *, json_output: bool, what: str) -> tuple[int, str, str]:
        call = self._lib_call if self.backend == "lib" else self._cli_call
        try:
            return run_in_netns(self.netns, lambda: call(text, json_output))
        except (OSError, subprocess.SubprocessError) as exc:
            raise NetworkSetupFailure(
                f"nftables: {what}: {exc} in {describe(self.netns)}",
                details={"netns": self.netns, "what": what},
            ) from exc

    @staticmethod
    def _lib_call(text: str, json_output: bool) -> tuple[int, str, str]:
        # A context per call, made on the namespace's thread, so its socket lives there.
        ctx = _binding().Nftables()  # type: ignore[union-attr]
        ctx.set_json_output(json_output)
        rc, output, error = ctx.cmd(text)
        return int(rc), str(output or ""), str(error or "")

    @staticmethod
    def _cli_call(text: str, json_output: bool) -> tuple[int, str, str]:
        # Started from the namespace's thread, the child is born in that namespace. With -j,
        # nft reads a file as JSON: a listing (one command) goes on the command line instead.
        if json_output:
            args, stdin = ["nft", "-j", *text.split()], None
        else:
            args, stdin = ["nft", "-f", "-"], text
        proc = subprocess.run(
            args, input=stdin, capture_output=True, text=True, check=False, timeout=30
        )
        return proc.returncode, proc.stdout, proc.stderr

    def _failure(self, what: str, error: str) -> NetworkSetupFailure:
        first = next((line for line in error.splitlines() if line.strip()), "unknown error")
        return NetworkSetupFailure(
            f"nftables refused {what} in {describe(self.netns)}: {first}",
            details={"netns": self.netns, "what": what, "error": error},
        )


__all__ = ["Backend", "Nft", "available_backend"]
