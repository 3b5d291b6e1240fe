"""Where an export lands: parse and validate a destination URL before any byte is downloaded.

A destination is a file URL on any filesystem Airflow's ObjectStoragePath knows (``file://``, ``s3://``, or
whatever a provider registers). Checks that need no I/O run on construction (DAG parse) for static values;
checks that need the store (bucket exists, file already there) run at task start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

EXAMPLE_DESTINATION = "s3://my-bucket/msghistory/2025-01-01/messages.csv"
IF_EXISTS_CHOICES = ("fail", "replace", "skip")
COMPRESSION_CHOICES = (None, "gzip")
LOCAL_SCHEMES = ("file", "local")
#: the extra of this package that installs a scheme's filesystem (its Airflow provider and fsspec driver)
SCHEME_EXTRAS = {"s3": "amazon", "s3a": "amazon", "s3n": "amazon", "gs": "google", "gcs": "google"}
PACKAGE = "airflow-provider-msghistory"


def validate_if_exists(value: object) -> str:
    if value not in IF_EXISTS_CHOICES:
        raise ValueError(
            f"if_exists: {value!r} is not one of {', '.join(map(repr, IF_EXISTS_CHOICES))}; "
            "e.g. if_exists='replace'"
        )
    return str(value)


def validate_compression(value: object) -> str | None:
    if value not in COMPRESSION_CHOICES:
        raise ValueError(f"compression: {value!r} is not supported; use None (plain CSV) or 'gzip'")
    return value  # type: ignore[return-value]


def registered_schemes() -> frozenset[str]:
    """Schemes Airflow's ObjectStoragePath can open (builtin plus those registered by providers)."""
    try:
        from airflow.sdk.io.fs import _register_filesystems  # Airflow 3
    except ImportError:
        from airflow.io import _register_filesystems  # type: ignore[no-redef]  # Airflow 2
    return frozenset(_register_filesystems())


@dataclass(frozen=True)
class Destination:
    """A validated destination file.

    :param url: the file's URL without credentials or connection id, e.g. ``s3://bucket/a/b.csv``.
    :param scheme: lower-case scheme, e.g. ``s3`` or ``file``.
    :param bucket: bucket/container for object stores, ``""`` for local paths.
    :param path: the path as the filesystem addresses it (``bucket/key`` or ``/abs/path``).
    :param conn_id: the Airflow connection used to reach the store, if any.
    """

    url: str
    scheme: str
    bucket: str
    path: str
    conn_id: str | None

    @property
    def is_local(self) -> bool:
        return self.scheme in LOCAL_SCHEMES

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> str:
        return self.path.rsplit("/", 1)[0] or "/"

    def part_path(self, token: str) -> str:
        """A hidden temporary name beside the destination, e.g. ``dir/.messages.csv.part-<token>``."""
        return f"{self.part_prefix}{token}"

    @property
    def part_prefix(self) -> str:
        """What every part file of this destination's name starts with."""
        return f"{self.path.rsplit('/', 1)[0]}/.{self.name}.part-"

    def filesystem(self) -> AbstractFileSystem:
        """The fsspec filesystem behind this destination (via ObjectStoragePath, so connections apply)."""
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        return ObjectStoragePath(self.url, conn_id=self.conn_id).fs


def parse_destination(value: Any, conn_id: str | None = None) -> Destination:
    """Validate ``value`` (a URL string or an ObjectStoragePath) without touching the store.

    :param value: the rendered destination.
    :param conn_id: storage connection; overrides a connection id carried by an ObjectStoragePath.
    :raises ValueError: naming ``destination`` and an accepted example.
    """
    if not isinstance(value, str):
        value, conn_id = _from_object_storage_path(value, conn_id)
    text = value.strip()
    if not text:
        raise ValueError(f"destination: empty; pass a file URL such as {EXAMPLE_DESTINATION!r}")
    if text.startswith("/"):
        text = "file://" + text
    if "://" not in text:
        raise ValueError(_relative(value))
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    _check_scheme(scheme, value)
    if parts.query or parts.fragment:
        raise ValueError(f"destination: {value!r} carries a query or fragment; pass a plain file URL")
    if scheme in LOCAL_SCHEMES:
        if parts.netloc not in ("", "localhost"):
            raise ValueError(
                f"destination: {value!r} names host {parts.netloc!r}; local paths look like "
                "'file:///data/msghistory/messages.csv'"
            )
        bucket, path = "", parts.path
    else:
        netloc = parts.netloc
        if "@" in netloc:  # ObjectStoragePath's "conn_id@bucket" form
            embedded, netloc = netloc.rsplit("@", 1)
            conn_id = conn_id or embedded
        if not netloc:
            raise ValueError(f"destination: {value!r} has no bucket; pass e.g. {EXAMPLE_DESTINATION!r}")
        bucket, path = netloc, netloc + parts.path
        if not parts.path.strip("/"):
            raise ValueError(
                f"destination: {value!r} names a bucket but no file; pass e.g. {EXAMPLE_DESTINATION!r}"
            )
    if ".." in path.split("/"):
        # A rendered value (a DAG param, an XCom) must not climb out of the directory it names.
        raise ValueError(
            f"destination: {value!r} contains a '..' segment; pass a path without '..', e.g. "
            f"{EXAMPLE_DESTINATION!r}"
        )
    if path.endswith("/") or not path.rsplit("/", 1)[-1]:
        raise ValueError(
            f"destination: {value!r} ends with '/'; it must name a file, e.g. {EXAMPLE_DESTINATION!r}"
        )
    return Destination(url=f"{scheme}://{path}", scheme=scheme, bucket=bucket, path=path, conn_id=conn_id)


def check_templated_destination(value: Any) -> None:
    """What a templated destination's static part already tells (DAG parse, before any export): the
    scheme before the first ``{{`` or ``{%`` must be installed, and a path must not be relative."""
    if not isinstance(value, str):
        return
    cut = min(i for i in (value.find("{{"), value.find("{%"), len(value)) if i >= 0)
    prefix = value[:cut].strip()
    if "://" in prefix:
        _check_scheme(prefix.split("://", 1)[0].lower(), value)
    elif "/" in prefix and not prefix.startswith("/") and ":" not in prefix.split("/", 1)[0]:
        raise ValueError(_relative(value))


def _check_scheme(scheme: str, value: object) -> None:
    if scheme in registered_schemes():
        return
    extra = SCHEME_EXTRAS.get(scheme)
    if extra is not None:
        raise ValueError(
            f"destination: {value!r} is on {scheme}://, whose filesystem is not installed; install it with "
            f"pip install '{PACKAGE}[{extra}]'"
        )
    known = ", ".join(sorted(registered_schemes()))
    raise ValueError(
        f"destination: unknown scheme {scheme!r} in {value!r}; Airflow's ObjectStoragePath knows {known} "
        f"(install the provider that registers {scheme!r})"
    )


def _relative(value: object) -> str:
    return (
        f"destination: {value!r} is a relative path; pass an absolute path such as "
        f"'/data/msghistory/messages.csv' or a URL such as {EXAMPLE_DESTINATION!r}"
    )


def _from_object_storage_path(value: Any, conn_id: str | None) -> tuple[str, str | None]:
    protocol = getattr(value, "protocol", None)
    if protocol is None or not hasattr(value, "path"):
        raise ValueError(
            f"destination: expected a URL string or an ObjectStoragePath, got "
            f"{type(value).__name__}; e.g. {EXAMPLE_DESTINATION!r}"
        )
    options = getattr(value, "storage_options", None) or {}
    carried = getattr(value, "conn_id", None) or options.get("conn_id")
    path = str(value.path)
    scheme = protocol or "file"
    if scheme in LOCAL_SCHEMES:
        return f"file://{path}", conn_id or carried
    bucket = str(getattr(value, "bucket", "") or "").rsplit("@", 1)[-1]
    key = str(getattr(value, "key", "") or "")
    return f"{scheme}://{bucket}/{key}", conn_id or carried


def check_destination_store(dest: Destination, fs: AbstractFileSystem, if_exists: str) -> bool:
    """Checks that need the store, run at task start. Returns True when the file is already there.

    :raises ValueError: the bucket does not exist, or the file exists and ``if_exists='fail'``.
    :raises PermissionError: the store has no credentials, or they may not read the destination.
    """
    fs.invalidate_cache()  # filesystem instances are shared within a process; their listings may be stale
    if not dest.is_local and getattr(fs, "anon", False) is True:
        # Found no credentials, the store's filesystem went anonymous (Airflow's S3 does): it could not
        # write, and reads as a missing bucket or a refusal. Say what happened.
        raise _no_credentials(dest, "the filesystem fell back to anonymous access, which cannot write")
    try:
        if not dest.is_local and not fs.exists(dest.bucket):
            _why_no_bucket(dest, fs)
        exists = bool(fs.exists(dest.path))
        if exists and fs.isdir(dest.path):
            raise ValueError(f"destination: {dest.url!r} is a directory; it must name a file")
    except PermissionError as error:
        raise denied(dest, error) from None
    if exists and if_exists == "fail":
        raise ValueError(
            f"destination: {dest.url!r} already exists and if_exists='fail'; pass "
            "if_exists='replace' to overwrite it or 'skip' to keep it"
        )
    return exists


def _why_no_bucket(dest: Destination, fs: AbstractFileSystem) -> None:
    """Raise what a bucket that ``exists()`` calls missing really is: some filesystems (s3fs) answer
    ``False`` for any failure, so the bucket's own lookup tells a missing bucket from missing credentials
    or a refusal."""
    where = f"storage_conn_id={dest.conn_id!r}"
    try:
        fs.info(dest.bucket)
    except FileNotFoundError:
        pass
    except PermissionError:
        raise
    except Exception as error:
        if "credential" in type(error).__name__.lower():  # botocore's NoCredentialsError and kin
            raise _no_credentials(dest, str(error)) from None
        if not isinstance(error, OSError):
            raise
    else:
        return  # there after all (created meanwhile)
    raise ValueError(
        f"destination: bucket {dest.bucket!r} does not exist (or is not visible with {where}); create it "
        f"or fix the URL {dest.url!r}"
    )


def _no_credentials(dest: Destination, detail: str) -> PermissionError:
    return PermissionError(
        f"destination: no credentials to reach {dest.url!r} (storage_conn_id={dest.conn_id!r}; {detail}); "
        "set storage_conn_id to a connection with credentials, or give the worker some (environment, "
        "profile, role)"
    )


def denied(dest: Destination, error: BaseException) -> PermissionError:
    """A permission error of the store, naming the ``destination`` argument and its connection."""
    if str(error).startswith("destination:"):
        return error if isinstance(error, PermissionError) else PermissionError(str(error))
    return PermissionError(
        f"destination: permission denied on {dest.url!r} with storage_conn_id={dest.conn_id!r} ({error}); "
        "grant this worker's credentials access there or pass a destination it may write"
    )
