"""Atomic writes: a temporary file in the target folder, flushed, then renamed over the target.

A failed or interrupted write leaves the previous file (if any) untouched and no partial file.
A process killed while writing (SIGKILL, power loss) cannot clean up: it may leave a temporary
`.NAME.XXXX.partial.SUFFIXES` beside the target, but never a damaged target.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from pathlib import Path
from typing import Iterable, Iterator, Optional

from ..errors import OutputError

NOT_TEXT = "the name holds bytes that are not UTF-8 text (written on a system of another encoding)"
TEMPORARY_NAME_ROOM = 64  # bytes the temporary beside an output adds to its path ('.NAME.XXXX.partial.SUFFIX')
PARTIAL = ".partial"  # in the names of temporary files: `.NAME.XXXX.partial.SUFFIXES`
_NEARLY_FULL = 1 << 20  # bytes: less free space than this counts as a full disk
_COMPOUND_SUFFIXES = (".nii.gz", ".seg.nrrd")
_NAME_KEPT = 64  # characters of the target's name in its temporary's name

_UMASK = os.umask(0)  # read the process umask (the only way is to set it) ...
os.umask(_UMASK)  # ... and put it back at once


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before any work, when `path` cannot be written."""
    path = Path(path)
    if not is_text_path(path):  # C++ writers (ITK) abort the process on such a name
        raise OutputError(NOT_TEXT, path, "choose a name of letters this system shows")
    existing = next((p for p in path.parents if p.is_dir()), Path("."))
    if len(os.fsencode(os.path.abspath(path))) + TEMPORARY_NAME_ROOM > _limit(existing, "PC_PATH_MAX", 4096):
        raise OutputError("the path is too long for this system", path, "write to a folder nearer the root")
    folder = path.parent if str(path.parent) else Path(".")
    if folder.exists() and not folder.is_dir():
        raise OutputError("the output folder is a file, not a folder", folder, "choose another output")
    if not folder.is_dir():
        raise OutputError("the output folder does not exist", folder, "create it first or choose another output")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError("the output folder is not writable", folder, "choose a folder you can write to")
    longest = _limit(folder, "PC_NAME_MAX", 255)
    if len(os.fsencode(path.name)) > longest:
        raise OutputError(f"the file name is too long ({len(os.fsencode(path.name))} bytes; this file system allows "
                          f"{longest})", path, "choose a shorter name")
    if path.is_dir():
        raise OutputError("the output is a folder, not a file", path, "give a file name")
    if path.exists() and not path.is_file():  # a device or a pipe: renaming over it would replace it with a file
        raise OutputError("the output is a device or a pipe, not a file", path, "give a file name")
    return path


def is_text_path(path: str | os.PathLike) -> bool:
    """Whether `path` is UTF-8 text: a name in another system's encoding reaches Python with
    undecodable bytes (surrogate escapes)."""
    try:
        os.fspath(path).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _limit(folder: Path, name: str, usual: int) -> int:
    """A limit of the file system holding `folder`, in bytes: "PC_NAME_MAX" the longest file name
    (255 on most), "PC_PATH_MAX" the longest path (4096 on Linux); `usual` where it cannot be asked."""
    try:
        return os.pathconf(folder, name)
    except (OSError, ValueError, AttributeError):  # Windows has no pathconf
        return usual


def check_output_folder(folder: str | os.PathLike, purpose: str) -> Path:
    """Fail early where `folder` cannot become an output folder: a file is in its place, or its parent
    is missing (not made: a mistyped path should fail, not grow a tree). `purpose`: what the folder
    is for, in the hint ("the report")."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError("is a file, not a folder", folder, f"give a folder for {purpose}")
    if not folder.parent.is_dir():
        raise OutputError("the parent folder does not exist", folder.parent, "create it first")
    return folder


def new_folder(parent: str | os.PathLike, names: Iterable[str], hint: str = "choose a folder you can write to") -> Path:
    """parent/NAME for the first of `names` not taken, made (`parent` too, where missing): never an
    existing folder. An `OutputError` where it cannot be made; `hint` says what to do when `parent`
    cannot be written."""
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise folder_error(parent, exc, hint) from None
    for name in names:
        folder = parent / name
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
        except OSError as exc:
            raise folder_error(folder, exc, hint) from None
    raise OutputError("every folder name for a new one is taken", parent, "move or remove older folders from it")


def folder_error(folder: Path, exc: OSError, hint: str = "choose a folder you can write to") -> OutputError:
    """The project's error for a folder that `mkdir` could not make."""
    existing = next((path for path in (folder, *folder.parents) if path.exists()), None)
    if existing is not None and not existing.is_dir():
        return OutputError("is a file, not a folder", existing, "choose another folder")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError("cannot make this folder: the folder it goes in is not writable", folder, hint)
    if exc.errno == errno.ENAMETOOLONG:
        return OutputError("the folder name is too long for this file system", folder, "choose a shorter name")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError("cannot make this folder: the disk is full", folder, "free some space")
    return OutputError(f"cannot make this folder ({exc.strerror or exc})", folder, "choose another folder")


@contextlib.contextmanager
def output_folder(folder: str | os.PathLike, purpose: str) -> Iterator[Path]:
    """`check_output_folder`, then the folder made where missing; a failure inside leaves no empty
    folder behind that was made here."""
    folder = check_output_folder(folder, purpose)
    made = not folder.exists()
    folder.mkdir(exist_ok=True)
    try:
        yield folder
    except BaseException:
        if made and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffixes); on success it replaces `path`.

    Writers that insist on choosing the format from the file name (SimpleITK) can write to the
    yielded path directly.
    """
    with atomic_paths(path) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Several outputs as one: every target is replaced only when all were written.

    Every temporary is flushed to disk first (a full disk shows up there at the latest) and only
    then renamed over its target, so a failure leaves every target as it was.
    """
    # an output that is a symbolic link: its target is replaced and the link kept, as `cp` writes through it
    targets = [check_writable(os.path.realpath(p) if os.path.islink(p) else p) for p in paths]
    temporaries: list[Path] = []
    current = targets[0] if targets else Path(".")  # the target a failure is reported for
    try:
        for current in targets:
            _create_temporary_beside(current, temporaries)
        yield list(temporaries)
        for current, tmp in zip(targets, temporaries):
            _fsync(tmp)
        for current, tmp in zip(targets, temporaries):
            os.replace(tmp, current)
    except OSError as exc:
        raise _output_error(current, exc) from None
    except OutputError as exc:  # a writer's own error names the file asked for, not its temporary
        named = {str(tmp): str(target) for target, tmp in zip(targets, temporaries)}
        exc.path = named.get(exc.path, exc.path)
        raise
    finally:
        for tmp in temporaries:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def is_partial(path: str | os.PathLike) -> bool:
    """True for a temporary file that an interrupted atomic write left behind."""
    name = Path(path).name
    return name.startswith(".") and PARTIAL + "." in name


def write_failure_errno(path: str | os.PathLike) -> Optional[int]:
    """The likely cause of a failed write that came without an error number (libraries that say
    only 'failed to write'): EFBIG when the file reached the file size limit, ENOSPC when the disk
    is (nearly) full, None when neither."""
    path = Path(path)
    limit = _file_size_limit()
    with contextlib.suppress(OSError):
        if limit is not None and path.exists() and path.stat().st_size >= limit:
            return errno.EFBIG
    with contextlib.suppress(OSError):
        if shutil.disk_usage(path.parent if str(path.parent) else ".").free < _NEARLY_FULL:
            return errno.ENOSPC
    return None


def _create_temporary_beside(path: Path, temporaries: list[Path]) -> None:
    """Create an empty temporary beside `path`, listed in `temporaries` before it exists.

    Listed first, so that an interrupt (Ctrl-C, SIGTERM) arriving between the file's creation
    and its listing cannot leave it behind: the caller's clean-up removes every listed name.
    """
    suffix = _format_suffix(path)
    while True:
        # the name's start only: a long name with the rest added would pass the file system's limit
        tmp = path.parent / f".{path.name[:_NAME_KEPT]}.{secrets.token_hex(4)}{PARTIAL}{suffix}"
        temporaries.append(tmp)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return
        except FileExistsError:
            temporaries.pop()  # another write's temporary: not ours to remove; try another name


def _format_suffix(path: Path) -> str:
    """The suffix a writer chooses the format by, in lower case as writers such as ITK's know them:
    the last one, or the last two for a compressed NIfTI or a Slicer segmentation. Never more: ITK's
    NIfTI writer drops a doubled suffix (it writes `x.nii` when asked for `x.nii.nii`), so a
    temporary named with every suffix of such a target would never be the file written."""
    name = path.name.lower()
    for compound in _COMPOUND_SUFFIXES:
        if name.endswith(compound) and len(name) > len(compound):
            return compound
    return path.suffix.lower() or ".tmp"


def _fsync(path: Path) -> None:
    # Temporaries are created owner-only (as are some writers' own files): outputs get the usual permissions.
    os.chmod(path, 0o666 & ~_UMASK)
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _output_error(path: Path, exc: OSError) -> OutputError:
    code = exc.errno if exc.errno is not None else write_failure_errno(path)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return OutputError("the disk is full; nothing was written", path, "free some space and run again")
    if code == errno.EFBIG:
        return OutputError("the file would be larger than allowed here (the file size limit, ulimit -f, or the "
                           "file system's largest file); nothing was written", path,
                           "raise the limit or write to another disk")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError("permission denied; nothing was written", path, "choose a folder you can write to")
    return OutputError(f"cannot write ({exc.strerror or exc}); nothing was written", path)


def _file_size_limit() -> Optional[int]:
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft
