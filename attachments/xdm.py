"""IHE XDM reader: an `IHE_XDM.ZIP` in, its DocumentEntries with verified content out.

Layout (IHE ITI TF-1 16, domain README section 5): ``README.TXT``, ``INDEX.HTM``,
``IHE_XDM/SUBSETnn/METADATA.XML`` (ebRIM SubmitObjectsRequest) and the documents beside it, named by
each entry's URI slot relative to the METADATA.XML directory.

Theory of operation (the archive is hostile until proven otherwise):

1. Central directory checks, before any byte is inflated: member count, unsafe names (absolute,
   drive letters, backslashes, ".." components), duplicate names (case-insensitive), nested archives
   by name, encrypted members, declared sizes (per member and in total) and compression ratio.
2. Members are read only when needed (METADATA.XML files and the documents they reference), in
   bounded chunks, counting real bytes: headers can lie, so the per-member, total and ratio limits
   are enforced again while inflating.
3. Any of the above refuses the whole archive (`XdmResult.refusal`). A document whose member is
   missing, whose content is itself an archive, or whose size or SHA-1 differs from the metadata is
   refused on its own (`XdmDocument.refusal`); the other documents are still returned.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import zipfile
import zlib
from dataclasses import dataclass, field

from attachments.ebrim import DocumentEntry, parse_metadata
from attachments.limits import Limits, Reason, Refusal

__all__ = ["XdmDocument", "XdmResult", "looks_like_xdm", "read_xdm"]

_CHUNK = 64 * 1024
_ARCHIVE_SUFFIXES = (
    ".zip",
    ".jar",
    ".gz",
    ".tgz",
    ".tar",
    ".7z",
    ".rar",
    ".bz2",
    ".xz",
    ".cab",
    ".zst",
)
# Local file header, gzip, 7z, rar, bzip2, xz magic numbers.
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"7z\xbc\xaf\x27\x1c", b"Rar!", b"BZh", b"\xfd7zXZ")
_DRIVE = re.compile(r"^[A-Za-z]:")
_METADATA = re.compile(r"^ihe_xdm/[^/]+/metadata\.xml$")


@dataclass(frozen=True, slots=True)
class XdmDocument:
    """One document of the archive with its metadata."""

    entry: DocumentEntry
    member: str | None
    """Zip member name, None when the URI did not resolve."""
    content: bytes = field(repr=False)
    """Member content (empty when missing); kept on hash/size mismatch for quarantine."""
    sha256: str
    refusal: Refusal | None = None


@dataclass(frozen=True, slots=True)
class XdmResult:
    """Result of `read_xdm`: documents in metadata order, or the archive-level refusal."""

    documents: tuple[XdmDocument, ...] = ()
    refusal: Refusal | None = None


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.text)
        self.refusal = refusal


def looks_like_xdm(data: bytes) -> bool:
    """Cheap test: a zip whose central directory names an IHE_XDM/*/METADATA.XML member."""
    if not data.startswith(b"PK"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return any(_METADATA.match(n.casefold()) for n in zf.namelist())
    except Exception:  # noqa: BLE001 - any unreadable zip is simply not XDM
        return False


def _unsafe(name: str) -> bool:
    if not name or name.startswith("/") or "\\" in name or "\x00" in name or _DRIVE.match(name):
        return True
    return any(part == ".." for part in name.split("/"))


class _Reader:
    def __init__(self, zf: zipfile.ZipFile, limits: Limits) -> None:
        self.zf = zf
        self.limits = limits
        self.read_total = 0
        self.by_name: dict[str, zipfile.ZipInfo] = {}
        self.by_fold: dict[str, zipfile.ZipInfo] = {}

    def check_directory(self) -> None:
        infos = self.zf.infolist()
        lim = self.limits
        if len(infos) > lim.max_zip_members:
            raise _Refused(
                Refusal(Reason.TOO_MANY_MEMBERS, f"more than {lim.max_zip_members} members")
            )
        declared_total = 0
        for info in infos:
            name = info.filename
            if _unsafe(name):
                raise _Refused(Refusal(Reason.UNSAFE_PATH, "absolute or traversing member name"))
            folded = name.casefold()
            if folded in self.by_fold:
                raise _Refused(Refusal(Reason.DUPLICATE_MEMBER, "duplicate member name"))
            if folded.endswith(_ARCHIVE_SUFFIXES):
                raise _Refused(Refusal(Reason.NESTED_ARCHIVE, "archive member inside archive"))
            if info.flag_bits & 0x1:  # APPNOTE 4.4.4 bit 0: encrypted
                raise _Refused(Refusal(Reason.ENCRYPTED_MEMBER, "encrypted member"))
            if info.file_size > lim.max_member_size:
                raise _Refused(Refusal(Reason.ARCHIVE_TOO_LARGE, "member declared too large"))
            declared_total += info.file_size
            if declared_total > lim.max_total_uncompressed:
                raise _Refused(Refusal(Reason.ARCHIVE_TOO_LARGE, "archive declared too large"))
            self._check_ratio(info.file_size, info.compress_size)
            self.by_name[name] = info
            self.by_fold[folded] = info

    def _check_ratio(self, size: int, compressed: int) -> None:
        lim = self.limits
        if size > lim.ratio_floor and size > lim.max_compression_ratio * max(compressed, 1):
            raise _Refused(
                Refusal(Reason.ZIP_BOMB, f"compression ratio above {lim.max_compression_ratio}")
            )

    def read(self, info: zipfile.ZipInfo) -> bytes:
        """Inflate one member in bounded chunks, enforcing limits on real byte counts."""
        lim = self.limits
        out = bytearray()
        try:
            with self.zf.open(info) as stream:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    out += chunk
                    self.read_total += len(chunk)
                    if len(out) > lim.max_member_size or len(out) > info.file_size:
                        raise _Refused(Refusal(Reason.ZIP_BOMB, "member larger than declared"))
                    if self.read_total > lim.max_total_uncompressed:
                        raise _Refused(Refusal(Reason.ARCHIVE_TOO_LARGE, "archive too large"))
                    self._check_ratio(len(out), info.compress_size)
        except _Refused:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise _Refused(
                Refusal(Reason.CORRUPT_ARCHIVE, f"corrupt member ({type(exc).__name__})")
            ) from exc
        except (NotImplementedError, RuntimeError) as exc:
            # Unsupported compression method, or encryption not flagged in the directory.
            raise _Refused(
                Refusal(Reason.CORRUPT_ARCHIVE, f"unreadable member ({type(exc).__name__})")
            ) from exc
        return bytes(out)

    def lookup(self, name: str) -> zipfile.ZipInfo | None:
        return self.by_name.get(name) or self.by_fold.get(name.casefold())

    def documents(self, metadata: zipfile.ZipInfo) -> list[XdmDocument]:
        entries = parse_metadata(self.read(metadata), self.limits)
        if isinstance(entries, Refusal):
            raise _Refused(entries)
        folder = posixpath.dirname(metadata.filename)
        return [self._document(entry, folder) for entry in entries]

    def _document(self, entry: DocumentEntry, folder: str) -> XdmDocument:
        uri = entry.uri
        if not uri:
            return _refused(entry, None, Refusal(Reason.MISSING_DOCUMENT, "entry has no URI"))
        if _unsafe(uri) or "://" in uri:
            return _refused(entry, None, Refusal(Reason.UNSAFE_PATH, "entry URI leaves the subset"))
        info = self.lookup(posixpath.join(folder, uri)) or self.lookup(uri)
        if info is None:
            return _refused(entry, None, Refusal(Reason.MISSING_DOCUMENT, "URI names no member"))
        content = self.read(info)
        if content.startswith(_ARCHIVE_MAGIC):
            raise _Refused(Refusal(Reason.NESTED_ARCHIVE, "document is itself an archive"))
        refusal: Refusal | None = None
        if entry.size is None or entry.size != len(content):
            refusal = Refusal(Reason.SIZE_MISMATCH, "size differs from metadata")
        elif entry.hash_sha1 is None or entry.hash_sha1 != hashlib.sha1(content).hexdigest():  # noqa: S324 - IHE mandates SHA-1 for integrity
            refusal = Refusal(Reason.HASH_MISMATCH, "SHA-1 differs from metadata")
        return XdmDocument(
            entry=entry,
            member=info.filename,
            content=content,
            sha256=hashlib.sha256(content).hexdigest(),
            refusal=refusal,
        )


def _refused(entry: DocumentEntry, member: str | None, refusal: Refusal) -> XdmDocument:
    return XdmDocument(
        entry=entry,
        member=member,
        content=b"",
        sha256=hashlib.sha256(b"").hexdigest(),
        refusal=refusal,
    )


def check_archive(data: bytes, limits: Limits = Limits()) -> Refusal | None:  # noqa: B008
    """Apply the archive limits to any zip, XDM or not, before anything of it is filed.

    The directory checks of `read_xdm` (member count, declared sizes and ratio, unsafe or
    duplicate names, archive names, encryption), then every member inflated in bounded chunks
    counting real bytes (headers can lie); a member that is itself an archive is refused.

    Returns:
        None for an archive within the limits, else the `Refusal`. Never raises for bad input.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - truncated or crafted: zipfile raises assorted errors
        return Refusal(Reason.NOT_A_ZIP, "not a readable zip archive")
    with zf:
        reader = _Reader(zf, limits)
        try:
            reader.check_directory()
            for info in zf.infolist():
                if info.is_dir():
                    continue
                if reader.read(info).startswith(_ARCHIVE_MAGIC):
                    raise _Refused(Refusal(Reason.NESTED_ARCHIVE, "member is itself an archive"))
        except _Refused as refused:
            return refused.refusal
        except Exception as exc:  # noqa: BLE001 - last line of defence for crafted archives
            return Refusal(Reason.CORRUPT_ARCHIVE, f"unreadable archive ({type(exc).__name__})")
    return None


def read_xdm(data: bytes, limits: Limits = Limits()) -> XdmResult:  # noqa: B008 - frozen default
    """Read an IHE XDM zip and return its documents with verified content.

    Args:
        data: the zip bytes (e.g. the `IHE_XDM.ZIP` attachment).
        limits: zip, XML and size bounds.

    Returns:
        An `XdmResult`: documents in metadata order, each possibly carrying its own refusal, or an
        archive-level `refusal` (and no documents) for hostile or unreadable archives. Never raises
        for bad input.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        return XdmResult(refusal=Refusal(Reason.NOT_A_ZIP, "not a readable zip archive"))
    except Exception:  # noqa: BLE001 - zipfile raises assorted errors on crafted directories
        return XdmResult(refusal=Refusal(Reason.NOT_A_ZIP, "not a readable zip archive"))
    with zf:
        reader = _Reader(zf, limits)
        try:
            reader.check_directory()
            metadata = sorted(
                (i for i in zf.infolist() if _METADATA.match(i.filename.casefold())),
                key=lambda i: i.filename,
            )
            if not metadata:
                return XdmResult(refusal=Refusal(Reason.NOT_XDM, "no IHE_XDM/*/METADATA.XML"))
            documents: list[XdmDocument] = []
            for info in metadata:
                documents.extend(reader.documents(info))
        except _Refused as refused:
            return XdmResult(refusal=refused.refusal)
        except Exception as exc:  # noqa: BLE001 - last line of defence for crafted archives
            return XdmResult(
                refusal=Refusal(
                    Reason.CORRUPT_ARCHIVE, f"unreadable archive ({type(exc).__name__})"
                )
            )
    return XdmResult(documents=tuple(documents))
