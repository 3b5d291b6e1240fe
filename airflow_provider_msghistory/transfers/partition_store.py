"""Commit a staged partition and its manifest: whole or old, never partial, never backwards.

Every partition file carries the snapshot it holds (when the vendor was asked). A commit replaces it only
with a later snapshot, so two runs restating the same day (a backfill, ``max_active_runs > 1``) may finish
in either order and the newer one stays.

- **Local disk**: the bytes go to a hidden part file beside the destination; then, under an exclusive
  ``flock`` on ``.<name>.lock`` (released by the kernel even when the process is killed), the manifest's
  snapshot is read and both files are moved into place with ``os.replace`` (atomic within a directory).
- **S3**: the object itself carries its snapshot (user metadata ``msghistory-snapshot``) and is written by
  one ``PutObject`` conditional on the ETag seen (``If-Match``; ``If-None-Match: *`` when absent): a writer
  landing in between makes the put fail with 412 and the check runs again. The manifest is written the same
  way. Objects above 5 GiB (one PUT's limit) are committed as a multipart upload and copy, unconditionally,
  with a warning.
- **Other stores** (no conditional write through fsspec): the manifest is checked just before a copy +
  delete; a writer landing in between can still win with an older snapshot (documented in
  ``docs/settled-history.md``).

A failure before the move leaves the old partition in place; part files of killed attempts are removed by
the next attempt (:func:`~airflow_provider_msghistory.transfers.streaming.remove_stale_parts`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_msghistory.client.datetimes import iso_utc, parse_utc
from airflow_provider_msghistory.transfers.destination import Destination, parse_destination
from airflow_provider_msghistory.transfers.partitions import PLACEHOLDER, Staged, Stager
from airflow_provider_msghistory.transfers.streaming import _part_token, remove_stale_parts

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

log = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".manifest.json"
SNAPSHOT_METADATA = "msghistory-snapshot"
#: the largest object one PutObject may write
MAX_PUT = 5 << 30
_CONFLICT_RETRIES = 8
_COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class Outcome:
    """What a commit did.

    :param replaced: the partition now holds this snapshot.
    :param held: the snapshot that stays when it was not replaced (a later or the same one).
    """

    replaced: bool
    held: datetime | None = None


def manifest_path(path: str) -> str:
    return path + MANIFEST_SUFFIX


def stager(template: Destination, compression: str | None) -> Stager:
    """How a transfer into ``template`` stages its partitions: on local disk in each partition's own part
    file beside it (the commit is a rename), elsewhere in a local temporary file (uploaded at commit)."""
    if not template.is_local:
        return lambda label: Staged(label, compression)

    def stage(label: str) -> Staged:
        dest = parse_destination(template.url.replace(PLACEHOLDER, label), template.conn_id)
        os.makedirs(dest.parent, exist_ok=True)
        remove_stale_parts(dest, dest.filesystem())
        return Staged(label, compression, dest.part_path(_part_token()))

    return stage


def commit_partition(
    dest: Destination, fs: AbstractFileSystem, staged: Staged, manifest: dict[str, Any], snapshot: datetime
) -> Outcome:
    """Put the staged file (finished) at ``dest`` and ``manifest`` beside it, unless the partition already
    holds ``snapshot`` or a later one."""
    body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    source = staged.file
    if dest.is_local:
        return _commit_local(dest, fs, staged, body, snapshot)
    if dest.scheme in ("s3", "s3a") and _size(source) <= MAX_PUT:
        return _commit_s3(dest, fs, source, body, snapshot)
    if dest.scheme in ("s3", "s3a"):
        log.warning("%s is over 5 GiB: committed without a conditional write (see the docs)", dest.url)
    return _commit_other(dest, fs, source, body, snapshot)


def held_snapshot(manifest: bytes | None) -> datetime | None:
    """The snapshot a stored manifest records (``None``: none, or not readable as one of ours)."""
    if not manifest:
        return None
    try:
        return parse_utc(str(json.loads(manifest)["snapshot"]))
    except (ValueError, KeyError, TypeError):
        return None


def _size(source: IO[bytes]) -> int:
    return os.fstat(source.fileno()).st_size


# -- local disk ----------------------------------------------------------------------------------------------


def _commit_local(
    dest: Destination, fs: AbstractFileSystem, staged: Staged, body: bytes, snapshot: datetime
) -> Outcome:
    os.makedirs(dest.parent, exist_ok=True)
    manifest_dest = dataclasses.replace(dest, url=manifest_path(dest.url), path=manifest_path(dest.path))
    remove_stale_parts(dest, fs)
    remove_stale_parts(manifest_dest, fs)
    manifest_part = manifest_dest.part_path(_part_token())
    in_place = staged.path is not None and staged.path.startswith(dest.part_prefix)
    data_part = staged.path if in_place and staged.path else dest.part_path(_part_token())
    try:
        if in_place:  # staged beside the destination: the commit is a rename
            os.fsync(staged.file.fileno())
        else:
            with open(data_part, "wb") as out:
                staged.file.seek(0)
                shutil.copyfileobj(staged.file, out, _COPY_CHUNK)
                out.flush()
                os.fsync(out.fileno())
        with open(manifest_part, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        lock_path = f"{dest.parent}/.{dest.name}.lock"
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # the check and both moves are one step for every writer
            held = held_snapshot(_read_local(manifest_path(dest.path)))
            if held is not None and held >= snapshot:
                return Outcome(False, held)
            os.replace(data_part, dest.path)
            os.replace(manifest_part, manifest_path(dest.path))
        _fsync_dir(dest.parent)
        return Outcome(True)
    finally:
        for leftover in (data_part, manifest_part):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def _read_local(path: str) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read(1 << 20)
    except FileNotFoundError:
        return None


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- S3: conditional writes ---------------------------------------------------------------------------------


def _commit_s3(
    dest: Destination, fs: Any, source: IO[bytes], body: bytes, snapshot: datetime
) -> Outcome:
    bucket, key = dest.path.split("/", 1)
    outcome = _put_if_newer(fs, bucket, key, source, snapshot)
    if outcome.replaced:
        # The manifest follows its file, by the same rule: of two writers, the later snapshot's stays.
        _put_if_newer(fs, bucket, manifest_path(key), body, snapshot)
    return outcome


def _put_if_newer(fs: Any, bucket: str, key: str, body: IO[bytes] | bytes, snapshot: datetime) -> Outcome:
    for _ in range(_CONFLICT_RETRIES):
        etag, held = _head(fs, bucket, key)
        if held is not None and held >= snapshot:
            return Outcome(False, held)
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        if not isinstance(body, bytes):
            body.seek(0)
        try:
            fs.call_s3(
                "put_object",
                Bucket=bucket,
                Key=key,
                Body=body,
                Metadata={SNAPSHOT_METADATA: iso_utc(snapshot)},
                **condition,
            )
        except Exception as error:
            if not _precondition_failed(error):
                raise
            log.info("s3://%s/%s changed while being written; checking its snapshot again", bucket, key)
            continue
        fs.invalidate_cache(f"{bucket}/{key}")
        return Outcome(True)
    raise OSError(f"s3://{bucket}/{key}: {_CONFLICT_RETRIES} writers raced for it; try again")


def _head(fs: Any, bucket: str, key: str) -> tuple[str | None, datetime | None]:
    try:
        head = fs.call_s3("head_object", Bucket=bucket, Key=key)
    except FileNotFoundError:
        return None, None
    value = (head.get("Metadata") or {}).get(SNAPSHOT_METADATA)
    try:
        held = parse_utc(value) if value else None
    except ValueError:
        held = None
    return head.get("ETag"), held


def _precondition_failed(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = str((response.get("Error") or {}).get("Code", ""))
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                return True
        if "PreconditionFailed" in str(seen) or "(412)" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# -- any other store ---------------------------------------------------------------------------------------


def _commit_other(
    dest: Destination, fs: Any, source: IO[bytes], body: bytes, snapshot: datetime
) -> Outcome:
    remove_stale_parts(dest, fs)
    fs.invalidate_cache()
    try:
        held = held_snapshot(fs.cat_file(manifest_path(dest.path)))
    except FileNotFoundError:
        held = None
    if held is not None and held >= snapshot:
        return Outcome(False, held)
    part = dest.part_path(_part_token())
    try:
        with fs.open(part, "wb") as out:
            source.seek(0)
            shutil.copyfileobj(source, out, _COPY_CHUNK)
        fs.mv(part, dest.path)
    except BaseException:
        with contextlib.suppress(Exception):
            if fs.exists(part):
                fs.rm(part)
        raise
    fs.pipe_file(manifest_path(dest.path), body)
    return Outcome(True)


# -- every partition of a transfer --------------------------------------------------------------------------


def publish(
    staged: Mapping[str, Staged],
    template: Destination,
    manifest_base: Mapping[str, Any],
    snapshot: datetime,
    log: Any,
) -> list[dict[str, Any]]:
    """Commit every staged partition (in order) with its manifest; the XCom entry of each.

    :param staged: the partitions by label.
    :param template: the destination holding ``{partition}``.
    :param manifest_base: what every manifest of the transfer says (vendor, export ids, window asked...).
    :param snapshot: when the vendor was asked.
    :param log: where kept (not replaced) partitions are reported.
    """
    results = []
    for name in sorted(staged):  # labels sort as their times do
        part = staged[name]
        dest = parse_destination(template.url.replace(PLACEHOLDER, name), template.conn_id)
        entry: dict[str, Any] = {
            "partition": name,
            "path": dest.url,
            "manifest": manifest_path(dest.url),
            "snapshot": iso_utc(snapshot),
            "rows": part.rows,
            "bytes": part.bytes,
            "stored_bytes": part.stored,
            "sha256": part.sha256,
            "statuses": dict(sorted(part.statuses.items())),
        }
        outcome = commit_partition(dest, dest.filesystem(), part, {**manifest_base, **entry}, snapshot)
        entry["replaced"] = outcome.replaced
        if outcome.replaced:
            log.info("Partition %s: %s rows, %s bytes at %s", name, part.rows, part.bytes, dest.url)
        else:
            entry["held_snapshot"] = iso_utc(outcome.held) if outcome.held else None
            why = (
                "this very snapshot (an earlier try of this run wrote it)"
                if outcome.held == snapshot
                else f"snapshot {entry['held_snapshot']}, later than this run's {entry['snapshot']} (a later "
                "run restated it first)"
            )
            log.warning("Partition %s: kept %s, which holds %s; not written", name, dest.url, why)
        results.append(entry)
    return results
