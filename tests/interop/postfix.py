"""A Debian Postfix instance on loopback, run as a third operator of the trust space.

The instance has its own configuration, queue, data and mail directories (under a temporary
directory readable by the ``postfix`` user), its own test CA and certificate, two smtpd
listeners (port 25 role: STARTTLS and a client certificate required; an injection port for the
test, plaintext, loopback only) and a virtual Maildir receiving every address of its domain.
Outbound, its smtp client presents its certificate and verifies ours (``secure``, TLS 1.2+),
with a transport map sending our domain to our inbound port.

Postfix has no DKIM signer without a milter and OpenDKIM is not installed: the test signs
messages with dkimpy before injecting them (the operator's signer), and verifies what Postfix
delivered with dkimpy (as ``dkimverify`` would, with the test's DNS zone).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mailserver.tls import issue_certificate, make_ca

POSTFIX = shutil.which("postfix") or ("/usr/sbin/postfix" if Path("/usr/sbin/postfix").exists()
                                      else None)

MASTER_CF = """\
127.0.0.1:{smtp_port} inet n - n - - smtpd
127.0.0.1:{inject_port} inet n - n - - smtpd
  -o smtpd_tls_security_level=none -o smtpd_tls_req_ccert=no -o smtpd_tls_ask_ccert=no
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
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = {domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
smtputf8_enable = no
biff = no
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = 100
transport_maps = inline:{{ {peer_domain}=smtp:[127.0.0.1]:{peer_port} }}
smtp_tls_policy_maps = inline:{{ {{ [127.0.0.1]:{peer_port} = secure match={peer_domain} }} }}
smtp_tls_security_level = secure
smtp_tls_CAfile = {peer_ca}
smtp_tls_cert_file = {root}/tls/server.pem
smtp_tls_key_file = {root}/tls/server.key
smtp_tls_mandatory_protocols = >=TLSv1.2
smtp_tls_protocols = >=TLSv1.2
smtp_tls_loglevel = 1
smtpd_tls_security_level = encrypt
smtpd_tls_ask_ccert = yes
smtpd_tls_req_ccert = yes
smtpd_tls_CAfile = {peer_ca}
smtpd_tls_cert_file = {root}/tls/server.pem
smtpd_tls_key_file = {root}/tls/server.key
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
maximal_backoff_time = 10s
minimal_backoff_time = 5s
queue_run_delay = 5s
"""


@dataclass
class PostfixOperator:
    """A running Postfix instance (see the module docstring)."""

    domain: str
    root: Path
    smtp_port: int
    inject_port: int

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def ca(self) -> Path:
        return self.root / "tls" / "ca.pem"

    @property
    def cert(self) -> Path:
        return self.root / "tls" / "server.pem"

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / "inbox"

    def delivered(self) -> list[bytes]:
        new = self.maildir / "new"
        if not new.exists():
            return []
        return [p.read_bytes() for p in sorted(new.iterdir())]

    def wait_delivered(self, count: int, timeout: float = 30.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.delivered()
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.2)

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        assert POSTFIX is not None
        subprocess.run([POSTFIX, "-c", str(self.config_dir), "stop"], check=False,  # noqa: S603
                       capture_output=True, timeout=30)


def start_postfix(domain: str, *, peer_domain: str, peer_port: int, peer_ca: Path,
                  smtp_port: int, inject_port: int) -> PostfixOperator:
    """Create the instance's files and start it (must run as root)."""
    assert POSTFIX is not None
    root = Path(tempfile.mkdtemp(prefix="mss-postfix-"))
    os.chmod(root, 0o755)  # noqa: S103 - Postfix daemons (user postfix) traverse it
    for sub in ("etc", "queue", "data", "mail", "tls"):
        (root / sub).mkdir(mode=0o755)
    nobody = pwd.getpwnam("nobody")
    postfix_user = pwd.getpwnam("postfix")
    os.chown(root / "mail", nobody.pw_uid, nobody.pw_gid)
    os.chown(root / "data", postfix_user.pw_uid, postfix_user.pw_gid)
    tls = root / "tls"
    make_ca(tls / "ca.pem", tls / "ca.key", f"Postfix test CA {domain}")
    issue_certificate(tls / "ca.pem", tls / "ca.key", tls / "server.pem", tls / "server.key",
                      [domain, "localhost", "127.0.0.1"], organisation=f"Operateur {domain}")
    shutil.copy(peer_ca, tls / "peer-ca.pem")
    values = {"root": root, "domain": domain, "uid": nobody.pw_uid, "gid": nobody.pw_gid,
              "peer_domain": peer_domain, "peer_port": peer_port,
              "peer_ca": tls / "peer-ca.pem", "smtp_port": smtp_port,
              "inject_port": inject_port}
    (root / "etc" / "main.cf").write_text(MAIN_CF.format(**values))
    (root / "etc" / "master.cf").write_text(MASTER_CF.format(**values))
    op = PostfixOperator(domain, root, smtp_port, inject_port)
    proc = subprocess.run([POSTFIX, "-c", str(root / "etc"), "start"],  # noqa: S603
                          capture_output=True,
                          text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"postfix start failed: {proc.stdout}{proc.stderr}")
    return op
