"""The SMTP reference pipeline, run privately: Debian's Postfix delivering by LMTP to Dovecot.

Used by ``bench/smtp_suite.py`` (needs root and ``apt-get install postfix dovecot-imapd
dovecot-lmtpd``; ``scripts/test`` installs them). Nothing touches the system instances: one
temporary directory holds a Postfix configuration, queue and log (``postfix -c DIR/postfix/etc``,
as tests/interop/postfix.py runs it) and a Dovecot configuration, sockets, log and maildir
(``dovecot -c DIR/dovecot/dovecot.conf -F`` as a child process, as bench/dovecot_reference.py
runs it).

Theory of operation, chosen to be like the mssante submission port the suite measures:

- Postfix listens on one free 127.0.0.1 port with STARTTLS required (``encrypt``, TLS 1.2+, a
  P-256 ECDSA certificate, which is what our server offers mail clients) and AUTH PLAIN required
  to relay (``smtpd_tls_auth_only``, ``permit_sasl_authenticated, reject``). SASL is Dovecot's:
  ``smtpd_sasl_type = dovecot`` on Dovecot's auth socket and a passwd-file. The password is
  stored salted SHA-512 (``SSHA512``), not Argon2id: Dovecot does not cache passwd-file
  lookups, so an Argon2id hash would be verified on every connection (measured here: over
  100 ms of CPU per login, more than the connection's ten 10 KiB messages), whereas our server
  verifies Argon2id once and then remembers the success for a few minutes, after which a
  login costs one hash comparison, as ``SSHA512`` does.
- Every address of the domain is a virtual mailbox delivered by ``lmtp:unix:`` to Dovecot's
  LMTP socket; Dovecot stores it in a maildir.
- Durability as shipped (checked with strace): Postfix's cleanup fsyncs the queue file before
  smtpd answers 250; Dovecot's ``mail_fsync = optimized`` (its default) fsyncs the mail file
  before it renames it into ``new/`` and answers the LMTP 250. Neither fsyncs the directory
  after the rename; our server fsyncs its SQLite WAL (``synchronous=FULL``) and, for blobs,
  the blob and its directory.
- Everything else is Postfix's and Dovecot's defaults (``in_flow_delay = 1s``, LMTP
  destination concurrency 20, one Dovecot ``lmtp`` process per connection).
"""

# ruff: noqa: S603, S607 - runs the local postfix/dovecot/doveadm binaries with fixed arguments
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dovecot_reference import make_cert

__all__ = ["Reference", "missing", "start"]

SCHEME = "SSHA512"  # see the module docstring

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
# private benchmark instance, see bench/smtp_reference.py
compatibility_level = 3.6
queue_directory = {pf}/queue
data_directory = {pf}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = {pf}/maillog
maillog_file_prefixes = {pf}
smtputf8_enable = no
biff = no
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = {domain}
virtual_mailbox_maps = static:mailbox
virtual_transport = lmtp:unix:{dc}/lmtp
smtpd_tls_security_level = encrypt
smtpd_tls_chain_files = {pf}/tls/key.pem, {pf}/tls/cert.pem
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {dc}/auth-postfix
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
"""

DOVECOT_CONF = """\
# private benchmark instance, see bench/smtp_reference.py
base_dir = {dc}/run
state_dir = {dc}/state
log_path = {dc}/dovecot.log
info_log_path = {dc}/dovecot.log
protocols = lmtp
ssl = no
disable_plaintext_auth = yes
auth_mechanisms = plain
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 100
mail_location = maildir:~/Maildir
mail_fsync = optimized
passdb {{
  driver = passwd-file
  args = {dc}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={dc}/home/%u
}}
service lmtp {{
  unix_listener {dc}/lmtp {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
service auth {{
  unix_listener {dc}/auth-postfix {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
"""


def missing() -> str | None:
    """Why the reference cannot run here, or None."""
    absent = [b for b in ("postfix", "dovecot", "doveadm") if not _which(b)]
    if absent:
        return (f"not installed: {', '.join(absent)} "
                "(apt-get install postfix dovecot-imapd dovecot-lmtpd)")
    if os.geteuid() != 0:
        return "Postfix and Dovecot must be started as root"
    return None


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _version(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    return out.rsplit("=", 1)[-1].split()[0] if out else "?"


@dataclass
class Reference:
    """A running Postfix -> Dovecot pair (see the module docstring)."""

    root: Path
    port: int
    user: str
    dovecot: subprocess.Popen[bytes]
    versions: str

    @property
    def cafile(self) -> Path:
        return self.root / "postfix" / "tls" / "cert.pem"

    @property
    def password_file(self) -> Path:
        return self.root / "password.txt"

    @property
    def maildir(self) -> Path:
        return self.root / "dovecot" / "home" / self.user / "Maildir"

    def pids(self) -> tuple[int, ...]:
        """The Postfix and Dovecot master processes (every daemon is a child of one of them)."""
        pid_file = self.root / "postfix" / "queue" / "pid" / "master.pid"
        return (int(pid_file.read_text().split()[0]), self.dovecot.pid)

    def delivered(self) -> int:
        """Messages Dovecot has stored so far (files in ``new/`` and ``cur/``)."""
        total = 0
        for sub in ("new", "cur"):
            try:
                total += sum(1 for _ in os.scandir(self.maildir / sub))
            except FileNotFoundError:
                pass
        return total

    def wait_delivered(self, count: int, timeout: float) -> float | None:
        """Poll until ``count`` messages are stored; the monotonic time then, None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.delivered() >= count:
                return time.monotonic()
            time.sleep(0.02)
        return None

    def problems(self) -> list[str]:
        """Deferred/bounced deliveries and Dovecot errors seen in the logs."""
        lines = []
        maillog = self.root / "postfix" / "maillog"
        if maillog.exists():
            lines += [ln for ln in maillog.read_text(errors="replace").splitlines()
                      if "status=deferred" in ln or "status=bounced" in ln
                      or " fatal:" in ln or " error:" in ln]
        log = self.root / "dovecot" / "dovecot.log"
        if log.exists():
            lines += [ln for ln in log.read_text(errors="replace").splitlines()
                      if "Error:" in ln or "Fatal:" in ln]
        return lines

    def stop(self) -> None:
        """Stop Postfix (and wait for its master) then Dovecot."""
        etc = self.root / "postfix" / "etc"
        try:
            master: int | None = self.pids()[0]
        except (OSError, ValueError, IndexError):
            master = None
        subprocess.run([_postfix(), "-c", str(etc), "stop"], capture_output=True, timeout=60,
                       check=False)
        deadline = time.monotonic() + 30
        while master and Path(f"/proc/{master}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.dovecot.send_signal(signal.SIGTERM)
        try:
            self.dovecot.wait(15)
        except subprocess.TimeoutExpired:
            self.dovecot.kill()
            self.dovecot.wait()


def _postfix() -> str:
    path = _which("postfix")
    assert path is not None
    return path


def _write_dovecot(dc: Path, user: str, password: str) -> Path:
    for sub in ("run", "state", "home"):
        (dc / sub).mkdir(parents=True)
    shutil.chown(dc / "home", "dovecot", "dovecot")
    hashed = subprocess.run(["doveadm", "pw", "-s", SCHEME, "-p", password], check=True,
                            capture_output=True, text=True).stdout.strip()
    (dc / "passwd").write_text(f"{user}:{hashed}\n")
    conf = dc / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(dc=dc))
    return conf


def _write_postfix(pf: Path, dc: Path, domain: str, port: int) -> Path:
    for sub in ("etc", "queue", "data", "tls"):
        (pf / sub).mkdir(parents=True, mode=0o755)
    postfix_user = pwd.getpwnam("postfix")
    os.chown(pf / "data", postfix_user.pw_uid, postfix_user.pw_gid)
    make_cert(pf / "tls")
    values = {"pf": pf, "dc": dc, "domain": domain, "port": port}
    (pf / "etc" / "main.cf").write_text(MAIN_CF.format(**values))
    (pf / "etc" / "master.cf").write_text(MASTER_CF.format(**values))
    return pf / "etc"


def _wait_socket(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"dovecot did not start ({proc.poll()}):\n{text}")
        time.sleep(0.1)


def _wait_port(port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                text = log.read_text(errors="replace") if log.exists() else ""
                raise RuntimeError(f"postfix not listening on {port}:\n{text}") from None
            time.sleep(0.1)


def start(domain: str, user: str, password: str) -> Reference:
    """Create the temporary directory, start Dovecot, then Postfix; the caller stops them."""
    root = Path(tempfile.mkdtemp(prefix="mssante-smtp-ref-"))
    os.chmod(root, 0o755)  # noqa: S103 - postfix and dovecot's unprivileged users traverse it
    dc, pf = root / "dovecot", root / "postfix"
    conf = _write_dovecot(dc, user, password)
    (root / "password.txt").write_text(password)
    port = _free_port()
    etc = _write_postfix(pf, dc, domain, port)
    versions = (f"Postfix {_version(['postconf', '-d', 'mail_version'])}, "
                f"Dovecot {_version(['dovecot', '--version'])}")
    dovecot = subprocess.Popen(["dovecot", "-c", str(conf), "-F"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    ref = Reference(root, port, user, dovecot, versions)
    try:
        _wait_socket(dc / "auth-postfix", dovecot, dc / "dovecot.log", 15)
        proc = subprocess.run([_postfix(), "-c", str(etc), "start"], capture_output=True,
                              text=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"postfix start failed: {proc.stdout}{proc.stderr}")
        _wait_port(port, pf / "maillog", 30)
    except BaseException:
        ref.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    return ref
