#!/usr/bin/env python3
"""Every shell command in the documentation is run, or is named as run elsewhere.

Extracts the commands in fenced code blocks of README.md, docs/*.md, deploy/**/*.md and
clients/python/README*: blocks tagged sh, bash, shell, console (or shell-session), and
untagged blocks whose lines start with a `$ ` prompt. In console blocks, and wherever a block
has `$ ` prompts, only the prompt lines are commands (the lines after them are output);
elsewhere every line is,
with `#` comments dropped, lines ending in `\\` joined to the next, and heredoc bodies kept
with their command. A block whose first line is `#!` is one script, named by its first
comment line (`script: <comment>`). An untagged block that looks like shell commands is an
error: tag it sh (to be checked) or text (a synopsis, not meant to be run).

Each distinct command must match one entry of tests/doc-commands.toml (`cmd`, exactly, or
`cmd_regex`, a full-match regular expression), which says one of:

  run = true        this script runs it from the repository root with bash, after:
                      - `sudo ` stripped (CI runs as root),
                      - target/debug (or $CARGO_TARGET_DIR/debug) first on PATH, so
                        `carbon-ops` and `carbon-ops-agent` are the binaries just built,
                      - the entry's `replace = [[from, to], ...]` applied (each `from` must
                        occur in the command; `{tmp}` is a scratch directory for the whole
                        session, `{root}` the repository root), with `note` saying why;
                    and checks the exit status (`expect_status`, default 0) and that the
                    output contains each of `expect_output`. Optional keys: `setup` (shell
                    lines run first), `agent = true` (an agent is started on a scratch
                    socket and CARBON_OPS_SOCKET names it), `ready` (for a command that
                    serves until stopped: wait for this text in its output, then SIGINT it),
                    `interrupt_after` (seconds; a command still running then is SIGINTed
                    and passes), `verify` (shell lines that must succeed after the command,
                    or, with `ready`, while it serves), `timeout` (seconds, default 300),
                    `unchanged` (files that must be byte-identical afterwards; restored if
                    not), `venv = true` (a
                    venv's bin first on PATH, for `pip`), `needs` (programs; missing ones
                    skip the entry), `needs_root`, `run_as` (for a script: the command,
                    with `{script}` the script's file).
  covered_by = F    it is run elsewhere: file F must exist and contain `test` (for a .rs
                    file: `fn <test>`), and each of `contains` (in a .rs file: inside that
                    function).
  cannot_run = R    it cannot run on a CI machine; R says why, and is printed every time.

Output is matched with ANSI colour codes removed. It fails (exit 1) on a command without an entry, on an entry that matches no command
(stale), on an entry without exactly one of run/covered_by/cannot_run, and on any command
that fails. A skip (missing program, not root) is a failure when CI or
CARBON_OPS_REQUIRE_PRIVILEGED is set. Usage:

  python3 tests/check-doc-commands.py            # check and run everything
  python3 tests/check-doc-commands.py --no-run   # check the manifest only (no commands run)
  python3 tests/check-doc-commands.py --list     # print the extracted commands
  python3 tests/check-doc-commands.py --only REGEX   # run only the matching commands
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "tests" / "doc-commands.toml"
SHELL_LANGS = {"sh", "bash", "shell", "console", "shell-session"}
# Untagged blocks starting like this are probably commands (and must be tagged).
LOOKS_LIKE_SHELL = re.compile(
    r"^(\$ |sudo |cargo |rustup |pip3? |python3? |carbon-ops(-agent)? |kubectl |docker |"
    r"podman |install |systemctl |systemd-[a-z]+ |journalctl |usermod |groupadd |curl |"
    r"git |make |cd |export |bash |sh |tests/|\./)"
)
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
SUDO = re.compile(r"(^|[;&|(]\s*)sudo\s+")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ENTRY_KEYS = {
    "cmd", "cmd_regex", "run", "covered_by", "cannot_run", "test", "contains", "replace",
    "note", "setup", "agent", "ready", "interrupt_after", "timeout", "expect_status",
    "expect_output", "unchanged", "venv", "needs", "needs_root", "run_as", "verify",
}


@dataclass
class DocCommand:
    file: str
    line: int
    cmd: str
    script: str | None = None  # the whole block, for a `#!` script

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Entry:
    index: int
    data: dict
    matches: list[DocCommand] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.data.get("cmd") or f"/{self.data.get('cmd_regex')}/"

    @property
    def kind(self) -> str:
        return next(k for k in ("run", "covered_by", "cannot_run") if k in self.data)


# --- extraction -----------------------------------------------------------------------------


def doc_files() -> list[Path]:
    files = [ROOT / "README.md"]
    files += sorted((ROOT / "docs").glob("*.md"))
    files += sorted((ROOT / "deploy").glob("**/*.md"))
    files += sorted((ROOT / "clients" / "python").glob("README*"))
    return [f for f in files if f.is_file()]


def strip_comment(line: str) -> str:
    """The line without a trailing `# comment` (a `#` outside quotes that starts a word)."""
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = None
        elif c == "\\":
            i += 1
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
        i += 1
    return line.rstrip()


def shell_commands(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Commands of a block where every line is a command (no prompts)."""
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        start, text = lines[i]
        i += 1
        cmd = strip_comment(text).strip()
        if not cmd:
            continue
        while cmd.endswith("\\") and i < len(lines):
            cmd = cmd[:-1].rstrip() + " " + strip_comment(lines[i][1]).strip()
            i += 1
        m = HEREDOC.search(cmd)
        if m:
            body = []
            while i < len(lines) and lines[i][1].strip() != m.group(2):
                body.append(lines[i][1])
                i += 1
            i += 1  # the terminator
            cmd = "\n".join([cmd, *body, m.group(2)])
        out.append((start, cmd))
    return out


def prompt_commands(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Commands of a console block: `$ ` lines (and their continuations); the rest is output."""
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        start, text = lines[i]
        i += 1
        if not text.lstrip().startswith("$ "):
            continue
        cmd = strip_comment(text.lstrip()[2:]).strip()
        while cmd.endswith("\\") and i < len(lines):
            nxt = lines[i][1].lstrip()
            nxt = nxt[2:] if nxt.startswith("> ") else nxt
            cmd = cmd[:-1].rstrip() + " " + strip_comment(nxt).strip()
            i += 1
        if cmd:
            out.append((start, cmd))
    return out


def extract(path: Path, errors: list[str]) -> list[DocCommand]:
    rel = str(path.relative_to(ROOT))
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[DocCommand] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        i += 1
        if not m:
            continue
        fence, indent = m.group("fence"), len(m.group("indent"))
        lang = m.group("info").strip().split(" ")[0].lower() if m.group("info").strip() else ""
        open_line = i
        body: list[tuple[int, str]] = []
        while i < len(lines):
            close = lines[i].strip()
            if close.startswith(fence[0] * len(fence)) and close.strip(fence[0]) == "":
                break
            text = lines[i]
            body.append((i + 1, text[indent:] if not text[:indent].strip() else text.lstrip()))
            i += 1
        i += 1
        prompts = any(t.lstrip().startswith("$ ") for _, t in body)
        first = next((t for _, t in body if t.strip()), "")
        if lang in SHELL_LANGS or (lang == "" and prompts):
            if prompts or lang in ("console", "shell-session"):
                cmds = prompt_commands(body)
            elif first.startswith("#!"):
                comment = next(
                    (t.lstrip("# ").strip() for _, t in body[1:] if t.startswith("#")), first
                )
                script = "\n".join(t for _, t in body) + "\n"
                found.append(DocCommand(rel, body[0][0], f"script: {comment}", script))
                continue
            else:
                cmds = shell_commands(body)
            found += [DocCommand(rel, n, c) for n, c in cmds]
        elif lang == "" and LOOKS_LIKE_SHELL.match(first.lstrip()):
            errors.append(
                f"{rel}:{open_line}: untagged code block looks like shell commands "
                f"({first.strip()!r}): tag it ```sh (then it is checked) or ```text (a "
                "synopsis or output, not meant to be run)"
            )
    return found


# --- manifest -------------------------------------------------------------------------------


def load_manifest(errors: list[str]) -> list[Entry]:
    data = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    entries = []
    for n, d in enumerate(data.get("command", [])):
        e = Entry(n, d)
        label = f"{MANIFEST.relative_to(ROOT)}: entry {n + 1} ({d.get('cmd') or d.get('cmd_regex')!r})"
        if ("cmd" in d) == ("cmd_regex" in d):
            errors.append(f"{label}: needs exactly one of `cmd` and `cmd_regex`")
        kinds = [k for k in ("run", "covered_by", "cannot_run") if k in d]
        if len(kinds) != 1:
            errors.append(f"{label}: needs exactly one of run, covered_by, cannot_run")
        unknown = set(d) - ENTRY_KEYS
        if unknown:
            errors.append(f"{label}: unknown keys {sorted(unknown)}")
        if "covered_by" in d and "test" not in d:
            errors.append(f"{label}: covered_by needs `test` (the test function or line)")
        if "cannot_run" in d and not str(d["cannot_run"]).strip():
            errors.append(f"{label}: cannot_run needs a reason")
        if "replace" in d and not d.get("note"):
            errors.append(f"{label}: `replace` needs a `note` saying why")
        entries.append(e)
    return entries


def match(cmds: list[DocCommand], entries: list[Entry], errors: list[str]) -> None:
    for c in cmds:
        exact = [e for e in entries if e.data.get("cmd") == c.cmd]
        regex = [
            e for e in entries if "cmd_regex" in e.data and re.fullmatch(e.data["cmd_regex"], c.cmd)
        ]
        hits = exact or regex
        if not hits:
            errors.append(
                f"{c.where}: command has no entry in tests/doc-commands.toml:\n    {c.cmd}\n"
                "  add a [[command]] entry with this exact `cmd` and one of `run = true` (this "
                "script runs it), `covered_by` + `test` (a test runs it) or `cannot_run` (why "
                "it cannot run in CI); see the top of tests/check-doc-commands.py"
            )
        elif len(hits) > 1:
            errors.append(
                f"{c.where}: command matches {len(hits)} entries ({', '.join(e.name for e in hits)})"
            )
        else:
            hits[0].matches.append(c)
    for e in entries:
        if not e.matches:
            errors.append(
                f"{MANIFEST.relative_to(ROOT)}: stale entry {e.name!r}: no documentation command "
                "matches it any more; update or delete it"
            )


def check_covered(e: Entry) -> str | None:
    """None when the named test exists and holds the command's distinctive arguments."""
    path = ROOT / e.data["covered_by"]
    if not path.is_file():
        return f"covered_by file {e.data['covered_by']} does not exist"
    text = path.read_text(encoding="utf-8")
    test = e.data["test"]
    if path.suffix == ".rs":
        m = re.search(rf"^(\s*)(pub\s+)?(async\s+)?fn {re.escape(test)}\b", text, re.M)
        if not m:
            return f"{e.data['covered_by']} has no `fn {test}`"
        end = text.find("\n" + m.group(1) + "}", m.end())
        text = text[m.start() : end if end > 0 else len(text)]
    elif test not in text:
        return f"{e.data['covered_by']} does not contain {test!r}"
    missing = [s for s in e.data.get("contains", []) if s not in text]
    if missing:
        return f"{e.data['covered_by']} ({test}) does not contain {missing}"
    return None


# --- running --------------------------------------------------------------------------------


class Session:
    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="doc-commands-"))
        target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
        self.target = target if target.is_absolute() else ROOT / target
        self.bin = self.target / "debug"
        self.agent: subprocess.Popen | None = None
        self.agent_socket = self.tmp / "fixture-agent.sock"
        self.venv = self.target / "doc-commands-venv"

    def subst(self, s: str, script: Path | None = None) -> str:
        s = s.replace("{tmp}", str(self.tmp)).replace("{root}", str(ROOT))
        return s.replace("{script}", str(script)) if script else s

    def env(self, e: Entry) -> dict:
        env = dict(os.environ)
        path = [str(self.bin)]
        if e.data.get("venv"):
            path.insert(0, str(self.venv / "bin"))
        env["PATH"] = os.pathsep.join(path + [env.get("PATH", "")])
        if e.data.get("agent"):
            env["CARBON_OPS_SOCKET"] = str(self.agent_socket)
        else:
            env.pop("CARBON_OPS_SOCKET", None)
        return env

    def ensure_venv(self) -> None:
        if not (self.venv / "bin" / "pip").exists():
            subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)

    def ensure_agent(self) -> None:
        if self.agent:
            return
        agent = self.bin / "carbon-ops-agent"
        if not agent.exists():
            raise RuntimeError(f"{agent} is missing: cargo build -p carbon-ops-agent --bins")
        (self.tmp / "fixture-ledger").mkdir(exist_ok=True)
        self.agent_log = open(self.tmp / "fixture-agent.log", "wb")
        self.agent = subprocess.Popen(
            [str(agent), "--socket", str(self.agent_socket),
             "--ledger", str(self.tmp / "fixture-ledger" / "ledger.jsonl")],
            stdout=self.agent_log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.agent.poll() is not None:
                break
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.agent_socket))
                time.sleep(1.0)  # a few ticks, so that processes have figures
                return
            except OSError:
                time.sleep(0.1)
        log = (self.tmp / "fixture-agent.log").read_text(errors="replace")
        raise RuntimeError(f"the fixture agent did not start serving:\n{log[-3000:]}")

    def close(self) -> None:
        if self.agent and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGINT)
            try:
                self.agent.wait(30)
            except subprocess.TimeoutExpired:
                self.agent.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_shell(cmd: str, env: dict, timeout: float, ready: str | None = None,
              interrupt_after: float | None = None,
              while_ready: list[str] | None = None) -> tuple[int | None, str, str, list[str]]:
    """Runs `cmd` with bash in its own process group; returns (status, output, how, problems
    of the `while_ready` commands, run once `ready` has been printed)."""
    proc = subprocess.Popen(
        ["bash", "-c", cmd], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    chunks: list[bytes] = []

    def pump() -> None:
        assert proc.stdout is not None
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):
            chunks.append(chunk)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    text = lambda: ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))  # noqa: E731
    problems: list[str] = []

    def stop(sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    try:
        how = "exited"
        deadline = time.monotonic() + (interrupt_after if interrupt_after else timeout)
        while proc.poll() is None and time.monotonic() < deadline:
            if ready and ready in text():
                how = "ready"
                break
            time.sleep(0.2)
        if how == "ready":
            for line in while_ready or []:
                rc, out, _, _ = run_shell(line, env, 120)
                if rc != 0:
                    problems.append(f"`{line}` (while it served) exited with {rc}:\n{out[-2000:]}")
        if proc.poll() is None:
            if how == "ready" or interrupt_after:
                how = "interrupted" if how == "exited" else how
                stop(signal.SIGINT)
            else:
                how = "timed out"
                stop(signal.SIGKILL)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                stop(signal.SIGKILL)
                proc.wait()
    except BaseException:
        stop(signal.SIGKILL)  # interrupted ourselves: leave nothing running
        raise
    reader.join(10)
    return proc.returncode, text(), how, problems


def run_entry(s: Session, e: Entry, c: DocCommand) -> tuple[str, str]:
    """('ok' | 'skip' | 'fail', detail)."""
    d = e.data
    missing = [p for p in d.get("needs", []) if not shutil.which(p)]
    if missing:
        return "skip", f"not installed: {', '.join(missing)}"
    if d.get("needs_root") and os.geteuid() != 0:
        return "skip", "needs root"
    script = None
    if c.script is not None:
        script = s.tmp / "script.sh"
        script.write_text(c.script)
        script.chmod(0o755)
        if "run_as" not in d:
            return "fail", "a script entry needs `run_as` (e.g. \"sh {script} ARGS\")"
        cmd = d["run_as"]
    else:
        cmd = c.cmd
        for frm, to in d.get("replace", []):
            if frm not in cmd:
                return "fail", f"`replace` pattern {frm!r} is not in the command any more"
            cmd = cmd.replace(frm, to)
        cmd = SUDO.sub(r"\1", cmd)
    cmd = s.subst(cmd, script)
    if d.get("venv"):
        s.ensure_venv()
    if d.get("agent"):
        s.ensure_agent()
    env = s.env(e)
    saved = {p: ((ROOT / p).read_bytes(), (ROOT / p).stat()) for p in d.get("unchanged", [])}
    timeout = float(d.get("timeout", 300))
    for line in d.get("setup", []):
        rc, out, how, _ = run_shell(s.subst(line, script), env, timeout)
        if rc != 0:
            return "fail", f"setup `{s.subst(line, script)}` {how} with status {rc}:\n{out[-3000:]}"
    verify = [s.subst(v, script) for v in d.get("verify", [])]
    rc, out, how, problems = run_shell(
        cmd, env, timeout, d.get("ready"), d.get("interrupt_after"),
        verify if d.get("ready") else None,
    )
    if d.get("ready") and how != "ready":
        problems.append(f"{how} (status {rc}) before printing {d['ready']!r}")
    elif d.get("interrupt_after") and how != "interrupted" and rc != 0:
        problems.append(f"exited with status {rc} before being interrupted")
    elif not d.get("ready") and not d.get("interrupt_after"):
        if how == "timed out":
            problems.append(f"timed out after {d.get('timeout', 300)} s")
        elif rc != d.get("expect_status", 0):
            problems.append(f"exit status {rc}, expected {d.get('expect_status', 0)}")
    for want in d.get("expect_output", []):
        if want not in out:
            problems.append(f"output lacks {want!r}")
    if not problems and not d.get("ready"):
        for line in verify:
            vrc, vout, _, _ = run_shell(line, env, 120)
            if vrc != 0:
                problems.append(f"check `{line}` exited with {vrc}:\n{vout[-2000:]}")
    for p, (before, st) in saved.items():
        if (ROOT / p).read_bytes() != before:
            (ROOT / p).write_bytes(before)
            problems.append(f"{p} changed (restored)")
        # Same bytes: keep the old time too, so that cargo does not rebuild what embeds it.
        os.utime(ROOT / p, ns=(st.st_atime_ns, st.st_mtime_ns))
    if problems:
        return "fail", f"ran: {cmd}\n  " + "\n  ".join(problems) + f"\n  output (tail):\n{out[-3000:]}"
    return "ok", cmd


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-run", action="store_true", help="check the manifest only")
    ap.add_argument("--list", action="store_true", help="print the extracted commands")
    ap.add_argument("--only", help="run only commands matching this regex")
    args = ap.parse_args()

    errors: list[str] = []
    cmds = [c for f in doc_files() for c in extract(f, errors)]
    if args.list:
        for c in cmds:
            print(f"{c.where}: {c.cmd}")
        print("\n".join(errors), file=sys.stderr)
        return 1 if errors else 0
    entries = load_manifest(errors)
    if not errors:
        match(cmds, entries, errors)
    if errors:
        print("doc commands: " + "\n\ndoc commands: ".join(errors), file=sys.stderr)
        return 1

    strict = bool(os.environ.get("CI") or os.environ.get("CARBON_OPS_REQUIRE_PRIVILEGED"))
    distinct: dict[str, tuple[Entry, DocCommand]] = {}
    for c in cmds:
        e = next(e for e in entries if c in e.matches)
        distinct.setdefault(c.cmd, (e, c))
    counts = {"run": 0, "covered_by": 0, "cannot_run": 0}
    failed: list[str] = []
    skipped: list[str] = []
    notes: list[str] = []
    cannot: list[str] = []
    session = None if args.no_run else Session()
    try:
        for cmd, (e, c) in distinct.items():
            counts[e.kind] += 1
            label = f"{c.where}: {cmd.splitlines()[0]}"
            if e.kind == "covered_by":
                problem = check_covered(e)
                if problem:
                    failed.append(f"{label}\n  {problem}")
                else:
                    print(f"COVERED  {label}  [{e.data['covered_by']}: {e.data['test']}]")
            elif e.kind == "cannot_run":
                cannot.append(f"{label}\n    {e.data['cannot_run']}")
            elif session is None or (args.only and not re.search(args.only, cmd)):
                continue
            else:
                t0 = time.monotonic()
                print(f"RUN      {label}", flush=True)
                try:
                    result, detail = run_entry(session, e, c)
                except Exception as ex:  # noqa: BLE001 (reported as a failure)
                    result, detail = "fail", str(ex)
                took = time.monotonic() - t0
                if result == "ok":
                    print(f"  ok ({took:.1f} s)" + (f": ran `{detail}`" if detail != cmd else ""))
                    if e.data.get("note"):
                        notes.append(f"{label}\n    {e.data['note']}")
                elif result == "skip":
                    print(f"  *** SKIPPED: {detail} ***")
                    (failed if strict else skipped).append(f"{label}\n  skipped: {detail}")
                else:
                    print(f"  FAILED ({took:.1f} s)")
                    failed.append(f"{label}\n  {detail}")
    finally:
        if session:
            session.close()

    total = sum(counts.values())
    print(f"\n{total} distinct documentation commands ({len(cmds)} occurrences): "
          f"{counts['run']} run here, {counts['covered_by']} covered by tests, "
          f"{counts['cannot_run']} cannot run"
          + (" (--no-run: nothing was run)" if args.no_run else ""))
    if notes:
        print("\nRun with a substitution:\n  " + "\n  ".join(notes))
    if cannot:
        print("\nNot run (cannot run in CI):\n  " + "\n  ".join(cannot))
    if skipped:
        print("\n*** SKIPPED (a failure when CI is set) ***\n  " + "\n  ".join(skipped))
    if failed:
        print(f"\n{len(failed)} FAILED:\n  " + "\n  ".join(failed), file=sys.stderr)
        print("\nfix the command in the documentation, or its entry in tests/doc-commands.toml",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
