"""`logs receive` fed by rsyslog: rsyslogd as a daemon (in the foreground, its own config, pid
file and work directory under the test's tmp dir) takes syslog lines over TCP (`imtcp`) and
ships them with `omelasticsearch` in bulk mode, configured as the README shows, to the `_bulk`
shim. Debian's rsyslog has no `omhttp`; `omelasticsearch` is its HTTP output.

rsyslog is used where installed (`apt-get install rsyslog rsyslog-elasticsearch`). Debian's
rsyslog conflicts with syslog-ng (both are the system log daemon), so where it is not, the
packages are fetched with `apt-get download` on first use and unpacked, not installed, into
`~/.cache/loglake/rsyslog` (or under $XDG_CACHE_HOME): ~1 s, 1 MB. Skipped, saying why, when
neither works."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.redis_server import free_port
from tests.helpers import RedisProc
from tests.receiver import TOKEN, Receiver, attrs, module_env, rows, running

PACKAGES = ("rsyslog", "rsyslog-elasticsearch", "libestr0", "libfastjson4")


@dataclass
class Rsyslog:
    binary: Path
    modules: Path
    """The directory holding omelasticsearch.so (and imtcp.so)."""
    libraries: Path | None = None
    """Unpacked shared libraries (LD_LIBRARY_PATH), for an unpacked copy."""


def _installed() -> Rsyslog | None:
    binary = shutil.which("rsyslogd") or (
        "/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None
    )
    if binary is None:
        return None
    found = glob.glob("/usr/lib/*/rsyslog/omelasticsearch.so") + glob.glob(
        "/usr/lib*/rsyslog/omelasticsearch.so"
    )
    return Rsyslog(Path(binary), Path(found[0]).parent) if found else None


def _unpacked(root: Path) -> Rsyslog | None:
    found = glob.glob(str(root / "usr/lib/*/rsyslog/omelasticsearch.so"))
    binary = root / "usr/sbin/rsyslogd"
    if not (found and binary.exists() and (root / ".loglake-complete").exists()):
        return None
    modules = Path(found[0]).parent
    return Rsyslog(binary, modules, modules.parent)


def _unpack(target: Path) -> str | None:
    """rsyslog's Debian packages downloaded and unpacked into `target`, or why not."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return "apt-get and dpkg-deb are not available to fetch it"
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".rsyslog-", dir=target.parent))
    try:
        debs = work / "debs"
        debs.mkdir()
        done = subprocess.run(
            ["apt-get", "download", *PACKAGES],
            cwd=debs,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            return f"apt-get download failed: {done.stderr.strip()[-400:]}"
        root = work / "root"
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=60)
        (root / ".loglake-complete").touch()
        with contextlib.suppress(OSError):  # another run unpacked it first
            root.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return None


@pytest.fixture(scope="module")
def rsyslog() -> Rsyslog:
    found = _installed()
    if found:
        return found
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    target = Path(base) / "loglake" / "rsyslog"
    found = _unpacked(target)
    if found:
        return found
    reason = _unpack(target)
    found = _unpacked(target)
    if found is None:
        pytest.skip(
            "rsyslog with omelasticsearch is not installed (apt-get install rsyslog "
            f"rsyslog-elasticsearch) and could not be unpacked: {reason}"
        )
    return found


def _send(port: int, lines: list[str]) -> None:
    """Syslog lines over TCP, newline-framed, once imtcp listens."""
    deadline = time.monotonic() + 30
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except OSError:
            assert time.monotonic() < deadline, "rsyslogd's imtcp did not listen"
            time.sleep(0.05)
    with sock:
        sock.sendall("".join(f"{line}\n" for line in lines).encode())


def _start(
    rsyslog: Rsyslog, folder: Path, elastic_port: int, action_options: str = ""
) -> tuple[subprocess.Popen[bytes], int]:
    """rsyslogd in the foreground with the README's omelasticsearch action, taking syslog over
    TCP into a ruleset of its own (its own messages stay out of it, on stderr): (process, TCP
    port)."""
    tcp = free_port()
    work = folder / "work"
    work.mkdir()
    conf = folder / "rsyslog.conf"
    conf.write_text(
        f"""global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="loglake")

module(load="omelasticsearch")
module(load="mmrm1stspace")
template(name="loglake-json" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="program" name="programname" format="jsonf")
  property(outname="severity" name="syslogseverity-text" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}}
ruleset(name="loglake") {{
  action(type="mmrm1stspace")
  action(type="omelasticsearch" server="127.0.0.1" serverport="{elastic_port}"
         searchIndex="logs" template="loglake-json" bulkmode="on" uid="rsyslog" pwd="{TOKEN}"
         action.resumeRetryCount="-1" errorfile="{folder / "es-errors.json"}"
         {action_options})
}}
"""
    )
    env = dict(os.environ)
    if rsyslog.libraries:
        env["LD_LIBRARY_PATH"] = str(rsyslog.libraries)
    with (folder / "rsyslogd.err").open("wb") as err:
        daemon = subprocess.Popen(
            [
                str(rsyslog.binary),
                "-n",
                "-f",
                str(conf),
                "-i",
                str(folder / "rsyslogd.pid"),
                "-M",
                str(rsyslog.modules),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
    return daemon, tcp


def _stop(daemon: subprocess.Popen[bytes], folder: Path) -> str:
    """SIGTERM to the rsyslogd we started; its stderr."""
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(30)
    return (folder / "rsyslogd.err").read_text(errors="replace")


def _wait_for(
    redis_proc: RedisProc, stream: str, count: int, daemon: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + 60
    while len(rows(redis_proc.client(), stream)) < count:
        assert daemon.poll() is None, "rsyslogd exited"
        assert time.monotonic() < deadline, f"rsyslog did not deliver {count} lines"
        time.sleep(0.1)


def _lines(count: int) -> tuple[list[str], list[tuple[int, str, str, str, str]]]:
    """RFC 5424 lines, each with its own time (microseconds), host and severity; and the
    (ts, level, service, host, message) each should land as."""
    severities = [(3, "ERROR"), (4, "WARN"), (5, "INFO"), (6, "INFO"), (7, "DEBUG")]
    lines, expected = [], []
    for i in range(count):
        number, level = severities[i % 5]
        ts = 1_795_168_800_000_000 + i * 1_001_001
        seconds, micros = divmod(ts, 1_000_000)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"
        lines.append(f"<{8 + number}>1 {stamp} web-{i % 3} billing 4242 - - charge {i} done")
        expected.append((ts, level, "billing", f"web-{i % 3}", f"charge {i} done"))
    return lines, expected


def test_rsyslog_omelasticsearch_bulk_lands_every_line_once(
    rsyslog: Rsyslog, receiver: Receiver, redis_proc: RedisProc, tmp_path: Path
) -> None:
    lines, expected = _lines(50)
    # And an RFC 3164 line: its `msg` starts with the space after the tag, which the README's
    # mmrm1stspace action removes.
    lines.append("<27>Nov 20 10:00:00 db-1 postgres[99]: could not connect")
    daemon, tcp = _start(rsyslog, tmp_path, receiver.ports["elastic"])
    try:
        _send(tcp, lines)
        _wait_for(redis_proc, receiver.stream, len(lines), daemon)
    finally:
        stderr = _stop(daemon, tmp_path)
    got = rows(redis_proc.client(), receiver.stream)
    assert len(got) == len(lines), stderr  # each exactly once
    assert not (tmp_path / "es-errors.json").exists()
    assert [(r.ts, r.level, r.service, r.host, r.message) for r in got[:50]] == expected
    assert all(attrs(r)["_index"] == "logs" for r in got)
    last = got[50]
    assert (last.level, last.service, last.host) == ("ERROR", "postgres", "db-1")
    assert last.message == "could not connect"


def test_rsyslog_started_before_the_receiver_delivers_once_it_is_up(
    rsyslog: Rsyslog,
    redis_proc: RedisProc,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With retries on (the README's `action.resumeRetryCount="-1"`, as rsyslog's docs advise
    for reliable delivery), lines sent while the receiver is down are kept and delivered once
    it is up, after rsyslog's health check (`GET /_cat/health`)."""
    elastic_port = free_port()
    daemon, tcp = _start(
        rsyslog,
        tmp_path,
        elastic_port,
        'action.resumeInterval="1"',  # a second between tries, not 30
    )
    lines, expected = _lines(20)
    env = module_env(redis_proc, tmp_path_factory)
    try:
        _send(tcp, lines)
        # rsyslog tried, failed and suspended the action before the receiver starts.
        deadline = time.monotonic() + 30
        while "suspending" not in (tmp_path / "rsyslogd.err").read_text(errors="replace"):
            assert daemon.poll() is None, "rsyslogd exited"
            assert time.monotonic() < deadline, "rsyslog did not try the receiver"
            time.sleep(0.05)
        with running(env, LOGS_RECEIVE_ELASTIC_PORT=str(elastic_port)) as late:
            _wait_for(redis_proc, env["LOGS_STREAM"], len(lines), daemon)
    finally:
        _stop(daemon, tmp_path)
    got = rows(redis_proc.client(), env["LOGS_STREAM"])
    assert [(r.ts, r.level, r.service, r.host, r.message) for r in got] == expected
    # Its health check was answered like Elasticsearch answers it, not with a 404.
    log = late.stderr.decode(errors="replace")
    assert "_cat/health" not in log, log


def test_a_batch_refused_under_backpressure_goes_to_rsyslogs_errorfile(
    rsyslog: Rsyslog,
    redis_proc: RedisProc,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """rsyslog suspends and retries only when it cannot connect (or gets 401/403): a batch
    answered 429, as the receiver answers while ingest is behind, is not retried but written
    to the action's `errorfile` (what it does with Elasticsearch's 429 too). The README says
    so; this pins it."""
    env = module_env(redis_proc, tmp_path_factory)
    client = redis_proc.client()
    for i in range(5):
        client.xadd(env["LOGS_STREAM"], {"message": f"backlog {i}"})
    lines, _ = _lines(10)
    with running(env, LOGS_RECEIVE_MAX_LAG="2") as busy:
        daemon, tcp = _start(rsyslog, tmp_path, busy.ports["elastic"])
        try:
            _send(tcp, lines)
            errors = tmp_path / "es-errors.json"
            deadline = time.monotonic() + 30
            while not (errors.exists() and "charge 9 done" in errors.read_text()):
                assert daemon.poll() is None, "rsyslogd exited"
                assert time.monotonic() < deadline, "rsyslog wrote no errorfile"
                time.sleep(0.05)
        finally:
            stderr = _stop(daemon, tmp_path)
    assert len(rows(client, env["LOGS_STREAM"])) == 5  # the backlog alone
    written = errors.read_text()
    assert all(f"charge {i} done" in written for i in range(10))
    assert "es_rejected_execution_exception" in written and "receive_max_lag" in written
    assert "bulkmode insert does not return array" in stderr
    assert "429 POST /_bulk" in busy.stderr.decode()
