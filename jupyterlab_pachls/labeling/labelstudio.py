"""Running Label Studio: a managed local process, or a team server given by URL and token.

Managed mode starts ``label-studio`` on 127.0.0.1 and a free port, with its
data beside the store, an admin user whose password and token are generated
once and kept server-side (``credentials.json``, mode 0600, never logged),
local-file serving rooted at the mount directory, and nothing phoning home.
The admin account serves the server's own calls only: each Jupyter user who
labels gets their own Label Studio account (``accounts.json``, 0600: the
passwords the embedded tab logs in with). Its doors are closed: sign-up needs
the organization's invite token (only the admin can read it), and every
password is generated and known to the server alone.
A first start runs database migrations (~30 s idle, minutes on a busy
machine), so ``status()`` reports ``starting`` with the elapsed time until
``/health`` answers. A watchdog restarts the process if it dies.

Label Studio runs in its own session, so signals meant for the server's process group
do not reach it. It must still not outlive a server killed outright (SIGKILL, OOM):

- on Linux it is started through ``setpriv --pdeathsig TERM``, so it ends when the server
  dies even if no server ever starts again (``label-studio start`` is one process: the
  signal reaches all of it);
- ``<data_dir>/label-studio.pid`` names the running process (pid and start time, against
  pid reuse) and the server that started it. The next ``start`` ends the process group it
  names when that is still a ``label-studio`` and its server is gone, before a new one opens
  the same SQLite database. A Label Studio whose server still runs (another live server on
  the same data dir) is left alone: two watchdogs would otherwise kill each other's process
  in a loop. ``stop`` removes the file.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..atomic_write import write_json
from ..pfs.errors import Unavailable
from ..pfs.model import _Json

ADMIN_EMAIL = "pachls-admin@localhost.localdomain"
READY_TIMEOUT = 600.0
RESTART_LIMIT = 5  # restarts within RESTART_WINDOW before giving up
RESTART_WINDOW = 300.0
PID_FILE = "label-studio.pid"
ACCOUNTS_FILE = "accounts.json"
OWNERS_FILE = "account-owners.json"
END_GRACE = 5.0  # seconds a leftover Label Studio gets between SIGTERM and SIGKILL
LOG_MAX_BYTES = 10 << 20  # the log is rotated past this size, into one older file (``<log>.1``)
TAIL_MAX_BYTES = 4 << 20  # what ``log_tail`` reads at most, from the end
#: Seconds a team server's ``/health`` may take: its status is part of what the panel polls.
HEALTH_TIMEOUT = 3.0
#: Seconds one of Label Studio's own commands (``reset_password``) may run; it waits on the database
#: Label Studio holds, so a stuck one is ended and answered unavailable instead of holding a thread.
COMMAND_TIMEOUT = 300.0


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str
    token: str


@dataclass(frozen=True)
class LabelStudioStatus(_Json):
    mode: str  # managed or external
    state: str  # stopped, starting, running, failed
    url: str | None
    message: str = ""
    started_seconds: float | None = None
    restarts: int = 0
    log: str | None = None


_ROTATE_LOCK = threading.Lock()  # one rotation at a time (the watchdog's and start()'s)


def rotate_log(path: Path, max_bytes: int = LOG_MAX_BYTES) -> bool:
    """Move a log larger than ``max_bytes`` into ``<path>.1`` (replacing the older one) and empty it;
    whether it did.

    Label Studio writes to the file through the descriptor it was started with, opened with
    O_APPEND: the log is copied (into a temporary file of its own), the copy put in place as
    ``<path>.1``, and only then the log truncated in place (never renamed, which would leave the
    process writing into the old file), so a failure anywhere leaves the log whole; the process's
    next write lands at the new end. A line written between the copy's last read and the truncation
    is lost (as with logrotate's ``copytruncate``); that window is a few system calls long."""
    with _ROTATE_LOCK:
        try:
            if os.stat(path).st_size <= max_bytes:
                return False
        except FileNotFoundError:
            return False
        tmp = None
        try:
            with open(path, "rb") as source:
                fd, tmp = tempfile.mkstemp(prefix=path.name + ".1.", suffix=".tmp", dir=path.parent)
                with os.fdopen(fd, "wb") as copy:
                    shutil.copyfileobj(source, copy)  # to the end, including what was written meanwhile
            os.replace(tmp, path.with_name(path.name + ".1"))
            tmp = None
            os.truncate(path, 0)
        except OSError:  # e.g. the disk is full: the log stays whole, and the next check tries again
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            return False
        return True


def tail_lines(path: Path, lines: int, max_bytes: int = TAIL_MAX_BYTES) -> list[str]:
    """The last ``lines`` lines of a text file, reading backwards from its end (at most ``max_bytes``);
    a line cut by that limit is left out."""
    block = 64 << 10
    chunks: list[bytes] = []
    newlines = 0
    with open(path, "rb") as f:
        end = position = f.seek(0, os.SEEK_END)
        while position > 0 and newlines <= lines and end - position < max_bytes:
            step = min(block, position, max_bytes - (end - position))
            position -= step
            f.seek(position)
            chunks.append(f.read(step))
            newlines += chunks[-1].count(b"\n")
    found = b"".join(reversed(chunks)).decode(errors="replace").splitlines()
    if position > 0 and found:
        found = found[1:]  # the first line may start before what was read
    return found[-lines:] if lines > 0 else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: What Label Studio's process (and its commands) create is its owner's alone: its database holds API
#: tokens and every task, its media folder the uploads.
LABEL_STUDIO_UMASK = 0o077


def owner_only(data_dir: Path) -> None:
    """Make the data dir 0700 (made so, or tightened when an earlier version made it 0755), and the
    files directly in it 0600 (the database and its journals, logs, credentials): nobody else on the
    machine reads Label Studio's tokens, accounts or tasks."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    for entry in data_dir.iterdir():
        if entry.is_file() and not entry.is_symlink():
            os.chmod(entry, entry.stat().st_mode & 0o700)


def load_credentials(data_dir: Path) -> Credentials:
    """The managed admin's credentials, generated on first use and kept in a 0600 file."""
    path = data_dir / "credentials.json"
    owner_only(data_dir)
    if path.exists():
        return Credentials(**json.loads(path.read_text()))
    creds = Credentials(email=ADMIN_EMAIL, password=secrets.token_urlsafe(18), token=secrets.token_hex(20))
    try:
        write_json(path, creds.__dict__, replace=False)
    except FileExistsError:  # another process made them first: theirs are the ones Label Studio gets
        return Credentials(**json.loads(path.read_text()))
    return creds


def process_start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, /proc/<pid>/stat field 22); None if it is gone."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None  # a zombie has ended; only its exit status is left to collect
    return int(fields[19])


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _process_group(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[2]) if fields else None


def _group_runs(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies have ended)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                return True
    return False


def _is_label_studio(pid: int, started: int) -> bool:
    """Whether ``pid`` is still the ``label-studio`` process that started at ``started``."""
    if process_start_time(pid) != started:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"label-studio" in f.read()
    except OSError:
        return False


def _end_process_group(pid: int, grace: float = END_GRACE) -> None:
    """SIGTERM the group ``pid`` leads (or ``pid`` alone if it leads none), SIGKILL what is left after ``grace``."""
    started = process_start_time(pid)
    leads = _process_group(pid) == pid

    def runs() -> bool:
        return _group_runs(pid) if leads else process_start_time(pid) == started

    def send(sig: int) -> None:
        try:
            os.killpg(pid, sig) if leads else os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    for sig in (signal.SIGTERM, signal.SIGKILL):
        send(sig)
        deadline = time.monotonic() + grace
        while runs():
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        else:
            return


def _die_with_parent() -> list[str]:
    """A command prefix that makes the child get SIGTERM when the server dies (Linux), or [].

    util-linux's ``setpriv`` sets the death signal and execs the command: no Python code runs
    between fork and exec in a server full of threads (what a ``preexec_fn`` would need)."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


class ManagedLabelStudio:
    """One ``label-studio`` process owned by the Jupyter server."""

    mode = "managed"

    def __init__(self, data_dir: str | os.PathLike, document_root: str | os.PathLike, *,
                 public_url: str | None = None, port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.document_root = Path(document_root)
        self.public_url = public_url  # what browsers use (the proxy prefix); baked into LS pages
        self.port = port
        self.credentials = load_credentials(self.data_dir)
        self.log_path = self.data_dir / "label-studio.log"
        self.log_max_bytes = LOG_MAX_BYTES
        self._process: subprocess.Popen | None = None
        self._lock = threading.RLock()
        self._state = "stopped"
        self._message = ""
        self._started_at: float | None = None
        self._restarts: list[float] = []
        self._last_exit: int | None = None  # exit code of the process the watchdog last replaced
        self._stopping = False
        self._watchdog: threading.Thread | None = None

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None

    @property
    def pid_path(self) -> Path:
        return self.data_dir / PID_FILE

    def _write_pid_file(self, process: subprocess.Popen) -> None:
        record = {"pid": process.pid, "start": process_start_time(process.pid),
                  "server": os.getpid(), "server_start": process_start_time(os.getpid())}
        # Only a crash of this server (not of the machine, which ends the process too) must find it.
        write_json(self.pid_path, record, fsync=False)

    def _read_pid_file(self) -> dict | None:
        try:
            record = json.loads(self.pid_path.read_text())
            return {key: int(record[key]) for key in ("pid", "start", "server", "server_start")}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def end_leftover(self) -> bool:
        """End the Label Studio a dead server left on this data dir (named by the pid file); whether one ran.

        Only the process the file names, only while it is that ``label-studio`` (same start time), and
        only when the server that started it is gone."""
        record = self._read_pid_file()
        if record is None:
            return False
        own = self._process is not None and self._process.pid == record["pid"]
        server_alive = process_start_time(record["server"]) == record["server_start"]
        if own or server_alive or not _is_label_studio(record["pid"], record["start"]):
            return False
        _end_process_group(record["pid"])
        return True

    def _remove_pid_file(self, process: subprocess.Popen) -> None:
        record = self._read_pid_file()
        if record is not None and record["pid"] == process.pid and record["server"] == os.getpid():
            try:
                self.pid_path.unlink()
            except FileNotFoundError:
                pass

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
        self.document_root.mkdir(parents=True, exist_ok=True)
        env.update({
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
            "LABEL_STUDIO_USERNAME": self.credentials.email,
            "LABEL_STUDIO_PASSWORD": self.credentials.password,
            "LABEL_STUDIO_USER_TOKEN": self.credentials.token,
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(self.document_root),
            "LABEL_STUDIO_SENTRY_DSN": "",
            "LABEL_STUDIO_FRONTEND_SENTRY_DSN": "",
            "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
            "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
            # no account without the invite token, which only the admin can read
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        })
        if self.public_url:
            env["LABEL_STUDIO_HOST"] = self.public_url
        return env

    def command(self) -> list[str]:
        executable = shutil.which("label-studio", path=str(Path(sys.executable).parent)) or shutil.which("label-studio")
        if executable is None:
            raise Unavailable("Label Studio is not installed: pip install 'jupyterlab-pachls[labelstudio]'")
        return [*_die_with_parent(), executable, "start", "--no-browser", "--internal-host", "127.0.0.1",
                "--port", str(self.port)]

    def start(self) -> None:
        """Start the process if it is not running; return at once (see ``status``)."""
        with self._lock:
            if self._process is not None and (self._process.poll() is None or self._watching()):
                return  # running, or died and the watchdog is restarting it (two restarts would race)
            self._stopping = False
            self.port = self.port or free_port()
            owner_only(self.data_dir)
            self.end_leftover()  # a killed server's Label Studio must not share the database with ours
            rotate_log(self.log_path, self.log_max_bytes)
            log = os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
            try:
                # The death signal follows the thread that forks: start() runs on threads that live as long
                # as the server (its event loop, asyncio's worker threads, the watchdog).
                process = subprocess.Popen(
                    self.command(), env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, cwd=self.data_dir, start_new_session=True,
                    umask=LABEL_STUDIO_UMASK,
                )
            finally:
                log.close()
            # "starting" before the live process is seen: ready() would take a restart's new process for the
            # old one that answered, and a call sent to it before it listens was refused as "unreachable"
            self._state, self._message, self._started_at = "starting", "", time.monotonic()
            self._process = process
            self._write_pid_file(process)
            if self._watchdog is None or not self._watchdog.is_alive():
                self._watchdog = threading.Thread(target=self._watch, name="pachls-labelstudio", daemon=True)
                self._watchdog.start()

    def _watching(self) -> bool:
        return self._watchdog is not None and self._watchdog.is_alive() and not self._stopping

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def _watch(self) -> None:
        while not self._stopping:
            process = self._process
            if process is not None and process.poll() is not None:
                with self._lock:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW]
                    if len(self._restarts) >= RESTART_LIMIT:
                        self._state = "failed"
                        self._message = (f"Label Studio exited {RESTART_LIMIT} times in {RESTART_WINDOW:.0f} s "
                                         f"(last exit code {process.returncode}); see {self.log_path}")
                        return
                    if self._process is not process:
                        continue  # replaced meanwhile
                    self._restarts.append(now)
                    self._last_exit = process.returncode
                    self._process = None
                    self.start()
            elif self._state == "starting" and self._healthy():
                self._state = "running"
            rotate_log(self.log_path, self.log_max_bytes)  # a running Label Studio logs every request it serves
            time.sleep(0.5)

    def _alive(self) -> bool:
        process = self._process
        return process is not None and process.poll() is None

    def ready(self) -> bool:
        """Whether Label Studio answers now (checks once; never waits)."""
        if self._state in ("failed", "stopped") or not self._alive():
            return False
        if self._state != "running" and self._healthy():
            self._state = "running"
        return self._state == "running"

    def crashed(self, within: float = 2.0) -> bool:
        """After a call to it failed: whether the process died (waits up to ``within`` s for the exit)."""
        process = self._process
        if process is None:
            return True
        try:
            process.wait(within)
        except subprocess.TimeoutExpired:
            return False
        return True

    def unavailable(self) -> Unavailable:
        """Why Label Studio cannot be used right now, as the error the REST API answers with (503)."""
        status = self.status()
        details = {"label_studio": status.state, "restarts": status.restarts, "log": status.log}
        if status.state == "failed":
            return Unavailable(status.message or f"Label Studio failed; see {self.log_path}", **details)
        if status.state == "stopped":
            return Unavailable("Label Studio is stopped", **details)
        elapsed = time.monotonic() - self._started_at if self._started_at else 0.0
        process = self._process
        if not self._alive() or self._restarts:
            code = process.returncode if process is not None and process.returncode is not None else self._last_exit
            how = f" (exit code {code})" if code is not None else ""
            since = f" ({elapsed:.0f} s so far)" if self._alive() else ""
            return Unavailable(
                f"Label Studio stopped unexpectedly{how} and is restarting{since}. Nothing was lost: "
                "acknowledged annotations are in its database. Try again in a few seconds.",
                label_studio="restarting", restarts=status.restarts, log=status.log)
        return Unavailable(
            f"Label Studio is starting ({elapsed:.0f} s so far; a first start prepares its database, "
            "which takes a minute or two). Try again when it is running.", **details)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Block until Label Studio answers; a dead process is waited for while the watchdog restarts it."""
        deadline = time.monotonic() + timeout
        while True:
            if self._state in ("failed", "stopped"):
                raise self.unavailable()
            if self.ready():
                return
            if time.monotonic() >= deadline:
                raise self.unavailable()
            time.sleep(0.25)

    def status(self) -> LabelStudioStatus:
        elapsed = time.monotonic() - self._started_at if self._started_at and self._state == "starting" else None
        state = self._state
        if state == "running" and not self._alive():
            state = "starting"  # died; the watchdog is restarting it
        return LabelStudioStatus(
            mode=self.mode, state=state, url=self.url, message=self._message,
            started_seconds=elapsed, restarts=len(self._restarts), log=str(self.log_path),
        )

    def stop(self, timeout: float = 15.0) -> None:
        with self._lock:
            self._stopping = True
            process, self._process = self._process, None
            self._state = "stopped"
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout)
            except ProcessLookupError:
                pass
        if process is not None:
            self._remove_pid_file(process)

    def log_tail(self, lines: int = 200) -> str:
        """The end of the process log (continued from the rotated one when the log is shorter than
        ``lines``), with the admin password and token masked."""
        text: list[str] = []
        for path in (self.log_path, self.log_path.with_name(self.log_path.name + ".1")):
            if len(text) >= lines:
                break
            try:
                text = tail_lines(path, lines - len(text)) + text
            except FileNotFoundError:
                pass
        masked = "\n".join(text)
        for secret in (self.credentials.password, self.credentials.token, *self.account_passwords().values()):
            masked = masked.replace(secret, "********")
        return masked

    # -- the accounts of the people who label --------------------------------------------------
    @property
    def accounts_path(self) -> Path:
        return self.data_dir / ACCOUNTS_FILE

    @property
    def owners_path(self) -> Path:
        return self.data_dir / OWNERS_FILE

    def _read_json(self, path: Path) -> dict:
        try:
            saved = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return saved if isinstance(saved, dict) else {}

    def _write_json(self, path: Path, saved: dict) -> None:
        """Owner-only (0600) and whole."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_json(path, saved)

    def account_passwords(self) -> dict[str, str]:
        """email -> password of the Label Studio accounts made for Jupyter users."""
        return self._read_json(self.accounts_path)

    def save_account_password(self, email: str, password: str) -> None:
        self._write_json(self.accounts_path, {**self.account_passwords(), email: password})

    def account_owners(self) -> dict[str, str]:
        """Jupyter user (the identity provider's username; "" for a server without named users) ->
        the email of the one Label Studio account that user logs in to."""
        return self._read_json(self.owners_path)

    def save_account_owner(self, user: str, email: str) -> None:
        self._write_json(self.owners_path, {**self.account_owners(), user: email})

    def reset_password(self, email: str, password: str) -> None:
        """Set the password of an existing Label Studio user (one made before, by someone else).

        Label Studio has no API for it: its own ``reset_password`` command, given the password on
        stdin (never on a command line other local users can read)."""
        command = self.command()
        start = command.index("start")
        try:
            done = subprocess.run([*command[:start], "reset_password", "--username", email],
                                  input=password + "\n", env=self.environment(), cwd=self.data_dir,
                                  capture_output=True, text=True, timeout=COMMAND_TIMEOUT, start_new_session=True,
                                  umask=LABEL_STUDIO_UMASK)
        except subprocess.TimeoutExpired:
            raise Unavailable(f"Label Studio's reset_password for {email} did not finish within "
                              f"{COMMAND_TIMEOUT:g} s (it was ended); try again", label_studio="timeout",
                              call="reset_password", deadline=COMMAND_TIMEOUT) from None
        if "successfully" not in done.stdout and "the same as current" not in done.stdout:
            raise Unavailable(f"could not set the Label Studio password of {email} (exit {done.returncode})")


class ExternalLabelStudio:
    """A Label Studio server run by the team; we only hold its URL and an API token."""

    mode = "external"

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.credentials = Credentials(email="", password="", token=token)

    def start(self) -> None:
        pass

    def ready(self) -> bool:
        return True  # asking costs a request: the call itself says whether it answers

    def crashed(self, within: float = 0.0) -> bool:
        return False  # not ours to watch

    def unavailable(self) -> Unavailable:
        return Unavailable(f"Label Studio at {self.url} does not answer; check that it runs, then try again",
                           label_studio="unreachable")

    def wait_ready(self, timeout: float) -> None:
        """One ``GET /health``, within ``timeout`` s (at most HEALTH_TIMEOUT: a server that accepts and
        never answers is reported as such, not waited for)."""
        limit = min(timeout, HEALTH_TIMEOUT)
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=limit) as response:
                if response.status == 200:
                    return
        except OSError as exc:
            if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
                raise Unavailable(f"Label Studio at {self.url} did not answer GET /health within {limit:g} s",
                                  label_studio="timeout", call="GET /health", deadline=limit) from exc
            raise Unavailable(f"Label Studio at {self.url} is unreachable: {exc}") from exc
        raise Unavailable(f"Label Studio at {self.url} is not healthy")

    def status(self) -> LabelStudioStatus:
        try:
            self.wait_ready(HEALTH_TIMEOUT)
            return LabelStudioStatus(mode=self.mode, state="running", url=self.url)
        except Unavailable as exc:
            return LabelStudioStatus(mode=self.mode, state="failed", url=self.url, message=exc.message)

    def stop(self) -> None:
        pass

    def log_tail(self, lines: int = 200) -> str:
        return ""
