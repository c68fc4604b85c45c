"""Ask for a client certificate, verify it after the handshake (Postfix ``smtpd_tls_ask_ccert``).

Theory of operation
-------------------
With ``CERT_OPTIONAL`` OpenSSL requests a client certificate and *aborts the handshake* when
the one presented does not verify. A peer whose CA is not in our trust list then sees a TLS
failure, which its queue takes for a temporary error: it retries for days and its sender
hears nothing. Postfix instead completes the handshake with any certificate and decides
afterwards, so the SMTP layer can answer a 5xx that says why, and the peer bounces at once.

Python's ``ssl`` has no verify callback, so :func:`ask_client_certificate` installs one with
``ctypes`` on the context's ``SSL_CTX``: it accepts every certificate, while OpenSSL still
runs its whole chain check (trusted CAs, validity, purpose) and records the outcome on the
connection. :func:`chain_problem` reads that outcome (``SSL_get_verify_result``) after the
handshake: the verification is exactly the one the handshake did before, only its verdict is
applied later, at MAIL FROM.

This needs the address of the ``SSL_CTX`` / ``SSL`` behind CPython's ``_ssl`` objects (first
fields after the object header, CPython 3.11-3.13). Both are checked against OpenSSL on a
throw-away object before anything is installed (``SSL_CTX_get_verify_mode`` follows
``verify_mode``; ``SSL_get_SSL_CTX`` of a new ``SSL`` is that context); when a check fails,
the context keeps verifying during the handshake, as before, and a warning is logged.
"""

from __future__ import annotations

import ctypes
import logging
import ssl
import sys
import weakref
from typing import Any

__all__ = ["ask_client_certificate", "chain_problem"]

log = logging.getLogger(__name__)

_SSL_VERIFY_PEER = 1
_X509_V_OK = 0
_HEAD = object.__basicsize__  # PyObject_HEAD
_PTR = ctypes.sizeof(ctypes.c_void_p)
_VerifyCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _accept_any(preverify_ok: int, store_ctx: int | None) -> int:
    # OpenSSL keeps the first failure in the connection's verify result; carry on.
    return 1


_ACCEPT_ANY = _VerifyCallback(_accept_any)  # module-level: must outlive every context

_asked: weakref.WeakSet[ssl.SSLContext] = weakref.WeakSet()


class _OpenSSL:
    """The few libssl functions used, from the library ``_ssl`` is linked with."""

    def __init__(self) -> None:
        import _ssl

        lib = ctypes.CDLL(_ssl.__file__)
        vp = ctypes.c_void_p
        self.set_verify = lib.SSL_CTX_set_verify
        self.set_verify.argtypes = [vp, ctypes.c_int, _VerifyCallback]
        self.set_verify.restype = None
        self.get_verify_mode = lib.SSL_CTX_get_verify_mode
        self.get_verify_mode.argtypes = [vp]
        self.get_verify_mode.restype = ctypes.c_int
        self.get_ssl_ctx = lib.SSL_get_SSL_CTX
        self.get_ssl_ctx.argtypes = [vp]
        self.get_ssl_ctx.restype = vp
        self.verify_result = lib.SSL_get_verify_result
        self.verify_result.argtypes = [vp]
        self.verify_result.restype = ctypes.c_long
        self.error_string = lib.X509_verify_cert_error_string
        self.error_string.argtypes = [ctypes.c_long]
        self.error_string.restype = ctypes.c_char_p


_lib: _OpenSSL | None = None


def _openssl() -> _OpenSSL | None:
    global _lib
    if _lib is None and sys.implementation.name == "cpython" \
            and (3, 11) <= sys.version_info[:2] <= (3, 13):
        try:
            _lib = _OpenSSL()
        except (OSError, AttributeError):
            log.warning("tls: libssl functions not found")
    return _lib


def _ctx_pointer(ctx: ssl.SSLContext) -> int | None:
    # PySSLContext: PyObject_HEAD, then SSL_CTX *ctx.
    return ctypes.c_void_p.from_address(id(ctx) + _HEAD).value


def _ssl_pointer(obj: ssl.SSLObject) -> int | None:
    # PySSLSocket: PyObject_HEAD, PyObject *Socket, then SSL *ssl.
    inner: Any = obj._sslobj  # type: ignore[attr-defined]
    return ctypes.c_void_p.from_address(id(inner) + _HEAD + _PTR).value


def _layout_ok(lib: _OpenSSL, ctx: ssl.SSLContext) -> bool:
    ptr = _ctx_pointer(ctx)
    if not ptr:
        return False
    mode = ctx.verify_mode
    try:
        for want, value in ((ssl.CERT_NONE, 0), (ssl.CERT_OPTIONAL, _SSL_VERIFY_PEER)):
            ctx.verify_mode = want
            if lib.get_verify_mode(ptr) != value:
                return False
    finally:
        ctx.verify_mode = mode
    probe = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True)
    ssl_ptr = _ssl_pointer(probe)
    return bool(ssl_ptr) and lib.get_ssl_ctx(ssl_ptr) == ptr


def ask_client_certificate(ctx: ssl.SSLContext) -> bool:
    """Request a client certificate and accept any during the handshake.

    The context must already trust the CAs to check against. Returns False (the context is
    left verifying during the handshake, ``CERT_OPTIONAL``) when this Python cannot do it.
    """
    ctx.verify_mode = ssl.CERT_OPTIONAL
    lib = _openssl()
    if lib is None or not _layout_ok(lib, ctx):
        log.warning("tls: cannot defer client certificate checks on this Python; untrusted "
                    "peers will fail the TLS handshake instead of getting a 550")
        return False
    ptr = _ctx_pointer(ctx)
    lib.set_verify(ptr, _SSL_VERIFY_PEER, _ACCEPT_ANY)
    _asked.add(ctx)
    return True


def chain_problem(obj: ssl.SSLObject | None) -> str | None:
    """Why the peer's certificate chain did not verify, or None when it did (or none was sent).

    For a context not set up by :func:`ask_client_certificate` the handshake itself refused
    bad chains, so the answer is None.

    Raises:
        RuntimeError: the verification result cannot be read for this connection.
    """
    if obj is None or obj.context not in _asked:
        return None
    lib = _openssl()
    ssl_ptr = _ssl_pointer(obj)
    if lib is None or not ssl_ptr or lib.get_ssl_ctx(ssl_ptr) != _ctx_pointer(obj.context):
        raise RuntimeError("TLS verification result unavailable")
    code = lib.verify_result(ssl_ptr)
    if code == _X509_V_OK:
        return None
    text = lib.error_string(code)
    return text.decode("ascii", "replace") if text else f"X509 error {code}"
