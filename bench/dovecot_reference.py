"""Run Debian's Dovecot 2.3 privately (temp dir, 127.0.0.1, free ports) as the IMAP reference.

Usage (as root, after ``apt-get install -y dovecot-imapd``)::

    .venv/bin/python bench/dovecot_reference.py [--clients 5] [--duration 10] [--prefill 1000]
        [--scheme ARGON2ID|SHA512-CRYPT|PLAIN] [--keep] [-- extra imap_stress.py options]

Everything lives in a fresh temp dir: config, base_dir, state_dir, log, a passwd-file with one
user, maildir home, and a self-signed certificate for localhost/127.0.0.1 made with
``cryptography``. Dovecot is started in the foreground (``dovecot -c CONF -F``) as a child
process, never through the system service; it listens on 127.0.0.1 with ``imap`` (STARTTLS,
``ssl = required``) and ``imaps`` ports picked free. The stock service defaults are kept
(high-security login processes, one imap process per connection) as in a Debian install;
``auth_cache`` is on (our server caches successful Argon2 verifications the same way).

It then runs bench/imap_stress.py twice (persistent sessions, then ``--login-each-cycle``)
against it, printing the same tables, and stops Dovecot (SIGTERM to the master it started).
"""

# ruff: noqa: S603, S607 - runs the local dovecot/doveadm binaries with fixed arguments
from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER = "dr@bench.mssante.test"
PASSWORD = "bench-password-2026"  # noqa: S105 - local benchmark account
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    """A port free on 127.0.0.1 right now (bind 0, read, close)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_cert(d: Path) -> None:
    """Self-signed P-256 certificate for localhost and 127.0.0.1 (cert.pem doubles as CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    os.chmod(d / "key.pem", 0o600)


def password_hash(scheme: str) -> str:
    """``{SCHEME}hash`` for passwd-file, made by ``doveadm pw`` (Dovecot's own defaults)."""
    if scheme == "PLAIN":
        return "{PLAIN}" + PASSWORD
    out = subprocess.run(["doveadm", "pw", "-s", scheme, "-p", PASSWORD], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def write_config(d: Path, imap_port: int, imaps_port: int, scheme: str) -> Path:
    """The private dovecot.conf; returns its path."""
    for sub in ("run", "state", "home"):
        (d / sub).mkdir()
    shutil.chown(d / "home", "dovecot", "dovecot")
    (d / "passwd").write_text(f"{USER}:{password_hash(scheme)}\n")
    conf = d / "dovecot.conf"
    conf.write_text(f"""# private benchmark instance, see bench/dovecot_reference.py
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_cache_size = 1M
auth_cache_ttl = 5 mins
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 100
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
    ssl = yes
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
""")
    return conf


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15) -> None:
    """Wait until 127.0.0.1:port accepts, or fail with Dovecot's log."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit(f"dovecot exited ({proc.returncode}):\n"
                     f"{log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("dovecot did not listen in time")


@dataclass
class Dovecot:
    """A running private Dovecot: its temp dir, ports, version and master process."""

    root: Path
    imap_port: int
    imaps_port: int
    version: str
    proc: subprocess.Popen[bytes]

    @property
    def cafile(self) -> Path:
        return self.root / "cert.pem"

    def stop(self, keep: bool = False) -> None:
        """SIGTERM to the master, print the log's error count, remove the temp dir."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        log = self.root / "dovecot.log"
        errors = [ln for ln in log.read_text().splitlines()
                  if "Error" in ln or "Fatal" in ln] if log.exists() else []
        print(f"dovecot log: {len(errors)} error lines" +
              "".join(f"\n  {ln}" for ln in errors[:5]))
        if keep:
            print(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def start(scheme: str) -> Dovecot:
    """Start a private Dovecot (see the module docstring) and wait for its imaps port."""
    if shutil.which("dovecot") is None:
        sys.exit("dovecot not installed: apt-get install -y dovecot-imapd")
    d = Path(tempfile.mkdtemp(prefix="dovecot-ref-"))
    os.chmod(d, 0o755)  # noqa: S103 - dovecot's unprivileged users must traverse it
    make_cert(d)
    imap_port, imaps_port = free_port(), free_port()
    conf = write_config(d, imap_port, imaps_port, scheme)
    version = subprocess.run(["dovecot", "--version"], capture_output=True,
                             text=True).stdout.strip()
    print(f"dovecot {version} in {d} (imap {imap_port}, imaps {imaps_port}, {scheme})",
          flush=True)
    proc = subprocess.Popen(["dovecot", "-c", str(conf), "-F"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    dv = Dovecot(d, imap_port, imaps_port, version, proc)
    try:
        wait_port(imaps_port, proc, d / "dovecot.log")
    except BaseException:
        dv.stop()
        raise
    (d / "pw").write_text(PASSWORD)
    return dv


def main() -> None:
    """Start Dovecot, run both stress modes against it, stop it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=5)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--prefill", type=int, default=1000)
    ap.add_argument("--tls", choices=["implicit", "starttls"], default="implicit")
    ap.add_argument("--scheme", default="ARGON2ID", help="passwd-file scheme (doveadm pw -s)")
    ap.add_argument("--modes", default="persistent,login", help="comma list")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir and print its path")
    ap.add_argument("extra", nargs="*", help="passed to imap_stress.py (after --)")
    a = ap.parse_args()
    dv = start(a.scheme)
    try:
        port = dv.imaps_port if a.tls == "implicit" else dv.imap_port
        base = [sys.executable, str(HERE / "imap_stress.py"), "--port", str(port),
                "--tls", a.tls, "--cafile", str(dv.cafile), "--user", USER,
                "--password-file", str(dv.root / "pw"), "--clients", str(a.clients),
                "--duration", str(a.duration), "--prefill", str(a.prefill),
                "--label", f"dovecot {dv.version.split()[0]}"]
        if a.json:
            base += ["--json", str(a.json)]
        for mode in a.modes.split(","):
            extra = ["--login-each-cycle"] if mode == "login" else []
            subprocess.run(base + extra + a.extra, check=True)
    finally:
        dv.stop(a.keep)


if __name__ == "__main__":
    main()
