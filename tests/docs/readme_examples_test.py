#!/usr/bin/env python3
"""Runs the examples of the docs against the platform and compares their output.

The docs are README.md and every page under docs/ (docs/**/*.md). The
platform is started the way the README tells a new user to, with
`deploy/quickstart.sh` (in the foreground, demo included), but on free ports
and in a temporary data folder (QUICKSTART_*_PORT, QUICKSTART_DATA_DIR), so
nothing of a developer's own `.data/` or ports is touched. Then, in reading
order (README.md, the PAGES below in their order, then every other page,
sorted; each from top to bottom):

- the quickstart output and the demo output shown in the docs are compared
  with what quickstart printed;
- the Python stubs are generated with the docs' `protoc` command;
- every transcript block (a fenced block whose lines start with "$ ") is run
  in one bash session from the repository root, and each command's output
  (stdout and stderr) is compared with the lines the page shows under it;
- a few shown outputs that are not transcripts are checked where they come
  from (a log line, a start-up error).

Commands are run as written, with these substitutions only: the default
ports 7101..7104 become the ports in use; `.data/` and `build/` become the
data and build folders; `/tmp/loyalty-py` and `health.py` become files in the
temporary folder; an id or card number that the docs showed earlier (in
the demo's output, or a transcript's) becomes the one this run printed in its
place; an id written as `tr_...` in a command is the last transfer id printed
before it. The example programs find the services and keys through
LOYALTY_<SERVICE>_ADDR and LOYALTY_DEV_KEYS_FILE, as the demo does; the
reference integrations and loyaltyctl get their documented address options
(--ledger=... and so on) right after the binary.

The examples share one platform, so those of a page see what the examples of
the pages before it did (the member ledger_earn.py enrolled, the transfers so
far); PAGES fixes the order they rely on.

Outputs are compared line by line after normalising what differs per run
(ids, card numbers, keys, hashes, pids, ports, paths, durations, runs of
spaces). In the docs, "..." in an output line matches anything.

Usage: readme_examples_test.py [--build-dir DIR] [--only PATTERN]
(PATTERN: run only transcripts whose commands contain it, after the checks of
quickstart's own output.)
"""
import argparse
import os
import pathlib
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
# The pages whose examples depend on one another, in the order they run
# (after README.md, before every other page): the Python stubs and
# ledger_earn.py's first earn; that member's refused calls; verify-chain,
# which counts the transfers so far (the demo's and that earn); the vet
# clinic POS, which earns and redeems more; loyaltyctl, which shows the
# member's history after all of them.
PAGES = ["docs/getting-started.md", "docs/authentication.md", "docs/services/ledger.md", "docs/partners.md",
         "docs/cli.md"]
SERVICES = ["membership", "ledger", "settlement", "catalog"]
DEFAULT_PORTS = {"membership": 7101, "ledger": 7102, "settlement": 7103, "catalog": 7104}
README_DB_PORT = 3307
STARTUP_TIMEOUT_S = 600
COMMAND_TIMEOUT_S = 120

failures = []


def fail(what: str) -> None:
    failures.append(what)
    print(f"FAIL: {what}", flush=True)


def free_ports(n: int) -> list:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# ---------------------------------------------------------------- docs parsing

class Block:
    """A fenced code block: its info string, lines, the prose before it, and
    where it is (`where`: "docs/cli.md line 12")."""

    def __init__(self, info, lines, before, line_no, page="README.md"):
        self.info = info
        self.lines = lines
        self.before = before
        self.line_no = line_no
        self.where = f"{page} line {line_no}"


def pages() -> list:
    """README.md, PAGES, then the other pages under docs/ (sorted): the order
    in which the examples run."""
    ordered = [README] + [REPO / p for p in PAGES]
    for page in ordered:
        if not page.is_file():
            fail(f"{page.relative_to(REPO)}: missing (the test runs its examples)")
    rest = sorted(p for p in DOCS.rglob("*.md") if p not in ordered)
    return [p for p in ordered if p.is_file()] + rest


def read_all_blocks() -> list:
    blocks = []
    for page in pages():
        blocks += read_blocks(page.read_text(), str(page.relative_to(REPO)))
    return blocks


def read_blocks(text: str, page: str = "README.md") -> list:
    blocks = []
    prose = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)```(\S*)\s*$", lines[i])
        if not m:
            prose.append(lines[i])
            i += 1
            continue
        indent, info, start = m.group(1), m.group(2), i
        body = []
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            line = lines[i]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            i += 1
        i += 1
        blocks.append(Block(info, body, re.sub(r"\s+", " ", " ".join(prose[-6:])), start + 1, page))
        prose = []
    return blocks


def transcript(block: Block) -> list:
    """[(command, [expected output lines])] of a block of "$ " lines."""
    steps = []
    lines = block.lines
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            if steps:
                steps[-1][1].append(lines[i])
            i += 1
            continue
        command = lines[i][2:]
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command = command + "\n" + lines[i]
        steps.append((command, []))
        i += 1
    return steps


# ---------------------------------------------------------------- normalising

class Context:
    def __init__(self, work: pathlib.Path, data: pathlib.Path, build: pathlib.Path, ports: dict, db_port: int):
        self.work = work
        self.data = data
        self.build = build
        self.ports = ports
        self.db_port = db_port
        self.ids = {}        # docs' id or card -> this run's, from the demo's output
        self.seen = {}       # docs' id -> this run's, as the transcripts show them
        self.last_ids = {}   # prefix ("tr") -> last id printed
        self.files = {}      # docs' file name (health.py) -> path

    def command(self, text: str) -> str:
        for name, port in self.ports.items():
            text = text.replace(f"127.0.0.1:{DEFAULT_PORTS[name]}", f"127.0.0.1:{port}")
        text = re.sub(r"(?<![\w/.-])\.data/", f"{self.data}/", text)
        text = re.sub(r"(?<![\w/.-])build/", f"{self.build}/", text)
        text = text.replace("/tmp/loyalty-py", str(self.work / "py"))
        for name, path in self.files.items():
            text = re.sub(rf"(?<![\w/.-]){re.escape(name)}\b", str(path), text)
        for readme_id, actual in self.seen.items():
            text = text.replace(readme_id, actual)

        def last(m):
            prefix = m.group(1)
            if prefix not in self.last_ids:
                fail(f"no {prefix}_ id printed before: {text}")
                return m.group(0)
            return self.last_ids[prefix]
        return re.sub(r"\b([a-z]{2,4})_\.\.\.", last, text)

    def remember(self, output: str) -> None:
        for m in re.finditer(r"\b([a-z]{2,4})_[0-9a-z]{16,}\b", output):
            self.last_ids[m.group(1)] = m.group(0)

    def normalise(self, line: str) -> str:
        """What is left of an output line once per-run values are replaced."""
        line = line.replace(str(self.data), "<data>")
        line = line.replace(str(self.build), "build")
        line = line.replace(str(self.work / "py"), "/tmp/loyalty-py")
        for name, path in self.files.items():
            line = line.replace(str(path), name)
        # .data/x, /work/main/.data/x and this run's data folder are one place.
        line = re.sub(r"(?<![\w./])(\S*/)?\.data(?=/|\b)", "<data>", line)
        line = line.replace("<data>", "<repo>/.data")
        for name, port in self.ports.items():
            line = re.sub(rf"\b{port}\b", str(DEFAULT_PORTS[name]), line)
        line = re.sub(rf"\b{self.db_port}\b", str(README_DB_PORT), line)
        line = re.sub(r"\blk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\b", "lk_<key>", line)
        line = re.sub(r"\b[0-9a-f]{64}\b", "<hash>", line)
        line = re.sub(r"\b[0-9a-f]{16}\.\.\.", "<hash>...", line)
        line = re.sub(r"\b7\d{15}\b", "<card>", line)
        line = re.sub(r"\b[0-9a-f]{16}\b", "<keyid>", line)
        line = re.sub(r"\b([a-z]{2,4})_[0-9a-z]{16,}\b", r"\1_<id>", line)
        line = re.sub(r"\b([a-z]{2,4})_\.\.\.", r"\1_<id>", line)
        line = re.sub(r"\bvoucher [0-9A-HJKMNP-TV-Z]{14}\b", "voucher <code>", line)
        line = re.sub(r"\bctl-[0-9A-HJKMNP-TV-Z]{20}\b", "ctl-<key>", line)
        line = re.sub(r"\bpid \d+", "pid <pid>", line)
        line = re.sub(r"\btook \d+s\b", "took <n>s", line)
        line = re.sub(r"\bts=\S+", "ts=<time>", line)
        line = re.sub(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<time>", line)
        line = re.sub(r"\blatency_us=\d+", "latency_us=<n>", line)
        return re.sub(r"\s+", " ", line).strip()


def line_matches(expected: str, actual: str) -> bool:
    """`expected` (normalised; "..." matches anything) against `actual`."""
    pattern = re.escape(expected).replace(re.escape("..."), ".*")
    return re.fullmatch(pattern, actual) is not None


ID_RE = re.compile(r"\b(?:[a-z]{2,4}_[0-9a-z]{16,}|7\d{15})\b")


def check_ids(what: str, pairs: list, seen: dict) -> None:
    """Ids are normalised away, but where the docs show one id twice
    (the same transfer on a replay, the member of the enrolment), the output
    must show one id there too, and different ids stay different. `seen`
    maps the docs' ids to this run's, across the transcripts."""
    back = {v: k for k, v in seen.items()}
    for want, got in pairs:
        ws, gs = ID_RE.findall(want), ID_RE.findall(got)
        if len(ws) != len(gs):
            continue  # the line comparison reports it
        for w, g in zip(ws, gs):
            if seen.setdefault(w, g) != g:
                fail(f"{what}: the output has {g} where the docs show {w}, which stood for "
                     f"{seen[w]} before (the docs say these are the same, they are not)")
            elif back.setdefault(g, w) != w:
                fail(f"{what}: the output has {g} where the docs show {w}, but {g} was shown "
                     f"as {back[g]} before (the docs say these differ, they do not)")


def compare(ctx: Context, what: str, expected: list, actual: list, subsequence: bool = False,
            seen: dict = None) -> None:
    """Line by line; with `subsequence`, each expected line in order among
    the actual ones (other actual lines may come between)."""
    expected = [x for x in expected if x.strip()]
    actual = [x for x in actual if x.strip()]
    want = [ctx.normalise(x) for x in expected]
    got = [ctx.normalise(x) for x in actual]
    if seen is not None and len(want) == len(got):
        check_ids(what, list(zip(expected, actual)), seen)
    if subsequence:
        j = 0
        for w in want:
            while j < len(got) and not line_matches(w, got[j]):
                j += 1
            if j == len(got):
                fail(f"{what}: shown line not found in order: {w!r}\n--- output:\n" + "\n".join(got))
                return
            j += 1
        return
    if len(want) != len(got) or not all(line_matches(w, g) for w, g in zip(want, got)):
        fail(f"{what}:\n--- docs (normalised):\n" + "\n".join(want) + "\n--- output (normalised):\n" +
             "\n".join(got))


# ---------------------------------------------------------------- running

# Binaries whose examples rely on the default addresses: the addresses in use
# are passed as the options each one documents (right after the binary).
ADDRESS_OPTIONS = {
    "partners/vet_clinic_pos/loyalty-vet-pos": ["membership", "ledger"],
    "partners/petfood_eshop/loyalty-eshop": ["membership", "ledger", "catalog"],
    "tools/loyaltyctl": ["membership", "ledger", "settlement", "catalog"],
}


def with_addresses(ctx: Context, command: str) -> str:
    for binary, services in ADDRESS_OPTIONS.items():
        path = str(ctx.build / binary)
        flags = " ".join(f"--{s}=127.0.0.1:{ctx.ports[s]}" for s in services)
        command = re.sub(rf"{re.escape(path)}(?=\s|$)", f"{path} {flags}", command)
    return command


class Terminal:
    """One bash process whose output goes to a pseudo-terminal, so programs
    buffer and interleave stdout and stderr as they do for a user (a pipe
    would let stderr overtake buffered stdout). Commands go in through stdin,
    one at a time, so `export` carries over from one to the next."""

    def __init__(self, env: dict):
        self.master, slave = pty.openpty()
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.ONLCR  # \n stays \n
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        self.proc = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=REPO, env=dict(env, TERM="dumb"),
                                     stdin=subprocess.PIPE, stdout=slave, stderr=slave, text=True)
        os.close(slave)
        self.pending = b""

    def run(self, command: str, n: int):
        """The command's output lines and exit status (None on timeout)."""
        done = f"@@readme-step@@ {n}"
        self.proc.stdin.write(f"{{\n{command}\n}} </dev/null; echo \"{done} $?\"\n")
        self.proc.stdin.flush()
        deadline = time.time() + COMMAND_TIMEOUT_S
        output = []
        while time.time() < deadline:
            while b"\n" in self.pending:
                raw, self.pending = self.pending.split(b"\n", 1)
                line = raw.decode(errors="replace").rstrip("\r")
                if line.startswith(done):
                    return output, int(line.split()[-1])
                output.append(line)
            ready, _, _ = select.select([self.master], [], [], 1)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                self.pending += chunk
        return output, None

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        finally:
            os.close(self.master)


def run_transcript(ctx: Context, env: dict, block: Block, steps: list) -> None:
    """Runs the block's commands in one shell; compares each one's output."""
    terminal = Terminal(env)
    try:
        for n, (raw, expected) in enumerate(steps):
            output, status = terminal.run(with_addresses(ctx, ctx.command(raw)), n)
            text = "\n".join(output)
            print(f"$ {raw}\n{text}\n(exit {status})", flush=True)
            ctx.remember(text)
            what = f"{block.where}: $ {raw.splitlines()[0]}"
            if status is None:
                fail(f"{what}: no answer within {COMMAND_TIMEOUT_S}s")
                return
            if expected:
                compare(ctx, what, expected, output, seen=ctx.seen)
            elif status != 0:
                fail(f"{what}: exit code {status} (the docs show no error)\n{text}")
    finally:
        terminal.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", default=os.environ.get("QUICKSTART_BUILD_DIR") or str(REPO / "build"))
    parser.add_argument("--only", default="")
    args = parser.parse_args()

    blocks = read_all_blocks()
    work = pathlib.Path(tempfile.mkdtemp(prefix="readme-", dir="/tmp"))
    data = work / "data"
    build = pathlib.Path(args.build_dir).resolve()
    # QUICKSTART_TEST_PORTS pins the ports ("M L S C DB"), as for
    # tests/deploy/quickstart_test.sh; by default, ports free a moment ago.
    pinned = os.environ.get("QUICKSTART_TEST_PORTS", "").split()
    picked = [int(p) for p in pinned] if len(pinned) == 5 else free_ports(5)
    ports = dict(zip(SERVICES, picked[:4]))
    db_port = picked[4]
    ctx = Context(work, data, build, ports, db_port)

    env = dict(os.environ)
    for k in list(env):
        if k.startswith(("QUICKSTART_", "LOYALTY_", "DEV_DB_")):
            del env[k]
    env.update({
        "QUICKSTART_DATA_DIR": str(data), "QUICKSTART_BUILD_DIR": str(build),
        "QUICKSTART_SKIP_DEPS": "1", "QUICKSTART_SKIP_BUILD": "1", "QUICKSTART_HEALTH_TIMEOUT": "180",
        "DEV_DB_PORT": str(db_port),
        "LOYALTY_DEV_KEYS_FILE": str(data / "keys" / "dev-keys.txt"),
    })
    for name, port in ports.items():
        env[f"QUICKSTART_{name.upper()}_PORT"] = str(port)
        env[f"LOYALTY_{name.upper()}_ADDR"] = f"127.0.0.1:{port}"

    out_path = work / "quickstart.out"
    print(f"== deploy/quickstart.sh (foreground) on {ports}, database {db_port}, data {data}", flush=True)
    with open(out_path, "w") as out:
        # As the README says it: `deploy/quickstart.sh`, from the repository root.
        quickstart = subprocess.Popen(["deploy/quickstart.sh"], cwd=REPO, env=env, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + STARTUP_TIMEOUT_S
        started = False
        while time.time() < deadline and quickstart.poll() is None:
            if "quickstart.sh: running; press Ctrl-C" in out_path.read_text():
                started = True
                break
            time.sleep(0.5)
        startup = out_path.read_text()
        print(startup, flush=True)
        if not started:
            fail("deploy/quickstart.sh did not come up")
            return 1
        check_quickstart_output(ctx, blocks, startup.splitlines())
        run_examples(ctx, env, blocks, args.only)
    finally:
        stop = subprocess.run(["deploy/quickstart.sh", "stop"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(stop.stdout, flush=True)
        try:
            quickstart.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(quickstart.pid, signal.SIGKILL)
            fail("the foreground quickstart did not stop")
        if quickstart.returncode not in (0, None):
            fail(f"the foreground quickstart exited {quickstart.returncode}")
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} failure(s)", flush=True)
        return 1
    print("PASS", flush=True)
    return 0


def check_quickstart_output(ctx: Context, blocks: list, startup: list) -> None:
    demo = [b for b in blocks if "The demo's output on a fresh machine" in b.before]
    if len(demo) != 1:
        fail(f"docs: {len(demo)} blocks of the demo's output, not one")
        return
    # The docs' ids (members, cards) stand for this run's: the demo
    # prints them in the same lines.
    for want in demo[0].lines:
        m = re.search(r"(\w[\w ]+) enrolled at ([\w-]+): member (mb_\w+), card (\d+)", want)
        if not m:
            continue
        for got in startup:
            g = re.search(rf"{re.escape(m.group(1))} enrolled at {m.group(2)}: member (mb_\w+), card (\d+)", got)
            if g:
                ctx.ids[m.group(3)] = g.group(1)
                ctx.ids[m.group(4)] = g.group(2)
    start = next((i for i, x in enumerate(startup) if x.startswith("== 1.")), None)
    if start is None:
        fail("quickstart did not run the demo")
        return
    end = next((i for i, x in enumerate(startup) if x.startswith("quickstart.sh: running;")), len(startup))
    compare(ctx, f"{demo[0].where}: the demo's output", demo[0].lines, startup[start:end])

    run = [b for b in blocks if "The end of its output" in b.before]
    if len(run) != 1:
        fail(f"docs: {len(run)} blocks of quickstart's output, not one")
        return
    compare(ctx, f"{run[0].where}: quickstart's output", run[0].lines, startup, subsequence=True)


def run_examples(ctx: Context, env: dict, blocks: list, only: str) -> None:
    ctx.seen.update(ctx.ids)
    for b in blocks:
        if b.info == "python" and b.lines and re.match(r"^# [\w-]+\.py$", b.lines[0]):
            name = b.lines[0][2:]
            path = ctx.work / name
            path.write_text("\n".join(b.lines) + "\n")
            ctx.files[name] = path
    for b in blocks:
        text = "\n".join(b.lines)
        if b.info == "sh" and "grpc_python_plugin" in text:
            # The stubs, generated as the docs say.
            print(f"== {b.where}: Python stubs", flush=True)
            gen = subprocess.run(["bash", "-euc", ctx.command(text)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
            if gen.returncode != 0:
                fail(f"{b.where}: generating the Python stubs failed:\n{gen.stdout}")
            continue
        steps = transcript(b)
        if not steps:
            if "Each call is one line in" in b.before:
                print(f"== {b.where}: a log line", flush=True)
                check_log_line(ctx, b)
            if "refuses to start (exit code 2)" in b.before:
                print(f"== {b.where}: a service without a keys file", flush=True)
                check_start_error(ctx, env, b)
            continue
        if only and not any(only in c for c, _ in steps):
            continue
        print(f"== {b.where}", flush=True)
        run_transcript(ctx, env, b, steps)


def check_log_line(ctx: Context, block: Block) -> None:
    """The log line shown must have the shape of one in the service's log."""
    m = re.search(r"`(\.data/logs/\w+\.log)`", block.before)
    if not m:
        fail(f"{block.where}: which log?")
        return
    log = (ctx.data / m.group(1)[len(".data/"):]).read_text().splitlines()
    for want in block.lines:
        w = ctx.normalise(want)
        if not any(line_matches(w, ctx.normalise(got)) for got in log):
            fail(f"{block.where}: no line like {w!r} in {m.group(1)}")


def check_start_error(ctx: Context, env: dict, block: Block) -> None:
    """A service without --api_keys_file: exit code 2 and the line the docs show."""
    bare = {k: v for k, v in env.items() if not k.startswith("LOYALTY_")}
    run = subprocess.run([str(ctx.build / "services" / "ledger" / "loyalty-ledger")], env=bare,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    if run.returncode != 2:
        fail(f"{block.where}: the ledger without a keys file exited {run.returncode}, not 2")
    compare(ctx, f"{block.where}: start-up error", block.lines,
            [x for x in run.stdout.splitlines() if "level=error" in x])


if __name__ == "__main__":
    sys.exit(main())
