"""The app server's work root: one folder (`$TMPDIR/xmempp-app-<pid>-<random>`) for every session's and API call's
files, held with a lock (`flock`) for as long as the server runs, removed when it exits, and by the next start when
it was killed.

Only this server writes into its root, and only while the root is the folder it holds: one removed while the server
runs (a cleaner of temporary files) is made again, held; whatever else is found at its path (a link, a mount,
someone's folder renamed there) is never written into, nor removed.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import stat
import tempfile
import threading
import time
from pathlib import Path

from xmempp.errors import XMemPPError, file_system_problem
from xmempp.mounts import (
    devices_of,
    mount_points,
    mount_risk,
    mount_within,
    mounted_in_another_namespace,
    mounts_elsewhere,
    names_in,
    other_namespaces_tables,
    remove_tree,
)
from xmempp.outputs import remove_own_folder

try:
    import fcntl
except ImportError:  # Windows: a work root's server is told by its pid alone
    fcntl = None

log = logging.getLogger("xmempp.app")
WORK_ROOT_PREFIX = "xmempp-app-"  # then the server's process id: xmempp-app-<pid>-<random>
WORK_ROOT_NAME = re.compile(r"xmempp-app-([0-9]+)-[a-z0-9_]{8}")  # the random part is mkdtemp's
UPLOADS, API_CALLS, SESSION_PREFIX = "uploads", "api", "session-"  # all a work root holds
ELSEWHERE_EVERY_S = 1.0  # other mount namespaces' tables are read again at most this often
LOOK_MARGIN_NS = 50_000_000  # file times lag the clock by a tick or so: a change this close to a look is looked at again
UPLOADS_REPLACED = ("the server's folder for uploads was replaced while it ran: it takes no new work now; tell the "
                    "server's operator (the reason is in the server's log)")
UPLOADS_MOUNTED_IN = ("something is mounted in the server's folder for uploads: it takes no new work now; tell the "
                      "server's operator (the reason is in the server's log)")


def _names_said(names: list[str]) -> str:
    """Up to three names, quoted, and how many more."""
    return ", ".join(repr(name) for name in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


class WorkRoot:
    """The work root at `path`, held by this server: `folder()` is where sessions and API calls write.

    A work root removed while the server ran was made again at its path by the next session or upload (Gradio's
    too), unlocked: the next server started on the same TMPDIR took it for a dead server's and removed it, with
    the visitors' files made since. Now the server makes it again itself, held, as soon as it is missed (`watch`
    looks five times a second, before Gradio's next upload makes it); anything else found at its path (a link, a
    mount, a file, a folder the server did not make: someone's, renamed there, or Gradio's, made in the moment
    before) is refused, never written into or removed. Holding a folder it did not make, by its names, took a
    user's folder renamed there for the root, and removed it at exit."""

    def __init__(self, path: Path):
        self.path = path
        # an open descriptor, not only (device, inode): a folder made again at the path may get the removed one's
        # inode number, and was taken for the root held
        self._descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        self._lock = threading.Lock()
        self._refused: tuple[int, int] | None = None  # said once in the log, not at every check
        self._refused_uploads: tuple[int, int] | None = None  # the same, for uploads/
        self._stopping = False
        self._seen_at = time.time()  # when the held root was last seen at its path
        # What the server made at the top of the held root, by name: (device, inode). Only these go at exit.
        self._own: dict[str, tuple[int, int]] = {}
        self._uploads_seen_at = time.time()  # when the uploads/ the server made was last seen there
        self._mounted_in_uploads: str | None = None  # something mounted in uploads/: nothing goes there meanwhile
        self._looking_elsewhere: threading.Thread | None = None  # `_look_elsewhere`, started at the first look
        self._mount_found_elsewhere: str | None = None  # what it last found mounted in uploads/ by another namespace
        self._uploads_looked_at: tuple[int, int, int] | None = None  # uploads/ as its links were last looked for
        atexit.register(self.remove)

    # ----- what the server made in it -----------------------------------------------------------------------
    def own(self, folder: Path) -> None:
        """`folder`, just made by the server at the top of the held root (a session's, uploads/, api/), is its own:
        removed at exit. Whatever else is found there at exit is left: a user's folder moved into the root (`mv
        mine ROOT` once the watcher had made ROOT again) or renamed onto uploads/ went with it, unsaid."""
        status = os.lstat(folder)
        with self._lock:
            if folder.parent == self.path and stat.S_ISDIR(status.st_mode):
                self._own[folder.name] = (status.st_dev, status.st_ino)

    def let_go(self, folder: Path) -> None:
        """`folder` is no longer the server's to remove (a closed tab's, removed by its session)."""
        with self._lock:
            if folder.parent == self.path:
                self._own.pop(folder.name, None)

    def is_own(self, folder: Path) -> bool:
        """Whether `folder`, at the top of the held root, is the one the server made there (see `own`)."""
        try:
            status = os.lstat(folder)
        except FileNotFoundError:
            return False
        with self._lock:
            return folder.parent == self.path and self._own.get(folder.name) == (status.st_dev, status.st_ino)

    def remove(self) -> None:
        """At exit: what the server made in the root, then the root itself, once it is empty; anything else is
        left, and said. The watcher stops first: a root made again after this, by the watcher seeing it go, was
        left behind."""
        with self._lock:
            self._stopping = True
            try:
                if not self._is_held(os.lstat(self.path)):
                    log.warning("the work root %s was replaced while the server ran: what is there now stays",
                                self.path)
                    return
            except FileNotFoundError:
                return
            if _mounted_elsewhere(self.path):  # removing it would take another namespace's mount away, all it holds
                log.warning("the work root %s is a mount point of another mount namespace: it stays, with what is "
                            "in it", self.path)
                return
            own, foreign = dict(self._own), []
            for name in sorted(names_in(self._descriptor)):
                if name == UPLOADS and name in own:
                    self._remove_uploads(own[name])
                elif name in own:
                    remove_own_folder(self.path / name, own[name])  # a folder put at its name meanwhile is left
                else:
                    foreign.append(name)
            try:
                os.rmdir(self.path)
            except OSError:
                left = sorted(names_in(self._descriptor))
                ours = [name for name in left if self._is_its_own(name, own)]
                theirs = [name for name in left if name not in ours]
                said = [f"{_names_said(theirs)}, which this server did not make there"] if theirs else []
                said += [f"{_names_said(ours)}, which it made there but could not remove (said above)"] if ours else []
                log.warning("left the work root %s: it holds %s; remove it once that is moved away", self.path,
                            "; ".join(said) or "nothing now")

    def _remove_uploads(self, made: tuple[int, int]) -> None:
        """uploads/ at exit: Gradio's cache in it (`_is_gradios_cache_entry`), then the folder once empty. Anything
        else put into it while the server ran (a user's folder or file moved in) stays, with the folder and the
        root, and is named: it went with uploads/ unsaid, where a restart after a kill kept it (sixty-first hostile
        round)."""
        try:
            uploads = os.open(UPLOADS, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=self._descriptor)
        except OSError:
            return  # gone, or no folder now: said with the root
        try:
            status = os.fstat(uploads)
            if (status.st_dev, status.st_ino) != made:
                return  # a folder put at its name meanwhile: not the server's
            theirs = [name for name in sorted(names_in(uploads)) if not _removed_if_gradios(uploads, name)]
        finally:
            os.close(uploads)
        if theirs:
            log.warning("left the uploads folder %s: it holds %s, which no upload made there (or a mount keeps)",
                        self.path / UPLOADS, _names_said(theirs))
            return
        with contextlib.suppress(OSError):
            os.rmdir(UPLOADS, dir_fd=self._descriptor)

    def _is_its_own(self, name: str, own: dict[str, tuple[int, int]]) -> bool:
        """Whether the entry `name` of the root is the folder the server made there (not one put at its name)."""
        try:
            status = os.lstat(name, dir_fd=self._descriptor)
        except OSError:
            return False
        return own.get(name) == (status.st_dev, status.st_ino)

    def folder(self) -> Path:
        """The work root's path, once it is the folder this server holds (made again and held when it was
        removed); an XMemPPError when something else is there."""
        with self._lock:
            try:
                status = os.lstat(self.path)
            except FileNotFoundError:
                if self._stopping:
                    raise XMemPPError("the server is stopping: it takes no new work") from None
                self._make_again()
                return self.path
            if self._is_held(status):
                self._seen_at = time.time()
                return self.path
            if self._made_by_an_upload_since(status) and self._hold_again():
                return self.path
            if self._refused != (status.st_dev, status.st_ino):
                self._refused = (status.st_dev, status.st_ino)
                log.warning("the work root %s was replaced while the server ran, by something not the server's (a "
                            "link, a mount, a file, or a folder it did not make): nothing is written there, nor "
                            "removed; new sessions and API calls are refused until it is moved away, or the server "
                            "restarted", self.path)
            raise XMemPPError("the server's work folder was replaced while it ran: it takes no new work now; tell "
                              "the server's operator (the reason is in the server's log)")

    def check_uploads(self) -> None:
        """Refuse (XMemPPError) unless the root at its path is the one this server holds and its uploads/ (Gradio's
        upload cache) the server's own folder, or not made yet. Gradio writes uploads and the files it serves by
        path: the watcher's look, five times a second, let through everything in between, and a folder put at
        uploads/ (someone's, renamed there) took every upload and had its files served (forty-sixth round)."""
        self.folder()
        self._keep_uploads()  # a link there goes, a missing uploads/ is made again
        with self._lock:
            try:
                status = os.lstat(self.path / UPLOADS)
            except FileNotFoundError:
                return
            if self._own.get(UPLOADS) == (status.st_dev, status.st_ino):
                if self._mounted_in_uploads is not None:
                    raise XMemPPError(UPLOADS_MOUNTED_IN)
                return
            if self._refused_uploads != (status.st_dev, status.st_ino):
                self._refused_uploads = (status.st_dev, status.st_ino)
                log.warning("the work root's uploads folder %s was replaced while the server ran, by a folder it did "
                            "not make: nothing is uploaded there nor served from it until it is moved away, or the "
                            "server restarted", self.path / UPLOADS)
        raise XMemPPError(UPLOADS_REPLACED)

    def watch(self, every_s: float = 0.2) -> threading.Thread:
        """Make the work root again, held, as soon as it is missed (see the class)."""
        def keep_held() -> None:
            while True:
                time.sleep(every_s)
                try:
                    self.folder()  # made again when missing; held when an upload made it again
                    self._keep_uploads()
                except (XMemPPError, OSError):
                    pass

        thread = threading.Thread(target=keep_held, name="work-root-held", daemon=True)
        thread.start()
        return thread

    def _keep_uploads(self) -> None:
        """Keep the held root's uploads/ (Gradio's upload cache) the server's own folder.

        A symbolic link put there is unlinked, what it leads to kept: Gradio wrote every upload through it into
        someone's folder, and served that folder's files to anyone asking for `/gradio_api/file=<root>/uploads/...`;
        so is a link in the server's own uploads/ (a link at uploads/<sha> took an upload too). A missing uploads/ is
        made again, the server's own; one Gradio's upload made again in the moment before is taken as the server's
        own as well. A user's folder renamed there stays theirs, exactly as it is (its own links were removed, round
        47): it is refused (`check_uploads`) and left at exit."""
        with self._lock:
            try:
                if self._stopping or not self._is_held(os.lstat(self.path)):
                    return
            except FileNotFoundError:
                return
            uploads = self.path / UPLOADS
            if uploads.is_symlink():  # Gradio makes a folder there, never a link
                os.unlink(uploads)
                log.warning("a symbolic link put at %s was removed (what it led to is kept): uploads go only into "
                            "the server's own folder", uploads)
            try:
                status = os.lstat(uploads)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(uploads)
                    status = os.lstat(uploads)
                    self._own[UPLOADS] = (status.st_dev, status.st_ino)
                return
            if self._own.get(UPLOADS) == (status.st_dev, status.st_ino):
                self._uploads_seen_at = time.time()
            elif _is_gradios_upload_cache(uploads) and _all_made_since(uploads, self._uploads_seen_at):
                self._own[UPLOADS] = (status.st_dev, status.st_ino)  # Gradio's, made again
            else:
                return  # not the server's: nothing in it is touched
            self._remove_links_in_uploads(uploads, status)
            mounted = self._mount_within_uploads(uploads)
            if mounted is not None and mounted != self._mounted_in_uploads:
                log.warning("something is mounted at %s, in the server's uploads folder: nothing is uploaded nor "
                            "served there until it is unmounted (it is left as it is)", mounted)
            self._mounted_in_uploads = mounted

    def mount_in_uploads(self) -> str | None:
        """A mount point inside this server's uploads/, at any depth and in any namespace; None when there is none or
        uploads/ is not there."""
        with self._lock:
            try:
                return self._mount_within_uploads(self.path / UPLOADS)
            except OSError:
                return None

    def _remove_links_in_uploads(self, uploads: Path, status: os.stat_result) -> None:
        """Unlink the symbolic links at the top of the server's own uploads/ (Gradio makes folders there, never
        links: a link at uploads/<sha> took an upload). Looked at again only once uploads/ has changed: a look at
        each of ten thousand entries, five times a second and at every request, held the server (forty-ninth
        hostile round). A change made while a look runs is seen by the next: its time is not before the look's.
        `status`: uploads/ as `_keep_uploads` has just seen it."""
        seen = (status.st_ino, status.st_mtime_ns, status.st_ctime_ns)
        if seen == self._uploads_looked_at:
            return
        started = time.time_ns() - LOOK_MARGIN_NS
        with os.scandir(uploads) as entries:
            for entry in entries:
                if entry.is_symlink():
                    os.unlink(entry.path)
                    log.warning("a symbolic link put at %s was removed (what it led to is kept): uploads go only "
                                "into the server's own folder", entry.path)
        # trusted next time only if nothing changed since the look began (the clock of file times is coarse)
        self._uploads_looked_at = seen if status.st_mtime_ns < started and status.st_ctime_ns < started else None

    def _mount_within_uploads(self, uploads: Path) -> str | None:
        """A mount point inside uploads/, at any depth, of this mount namespace (looked at now) or another (as
        `_look_elsewhere` last found): Gradio wrote an upload into a folder bind-mounted at uploads/<sha>
        (forty-eighth hostile round), or a file mounted at uploads/<sha>/<name>, and served their other files
        (forty-ninth)."""
        if self._looking_elsewhere is None:
            self._looking_elsewhere = threading.Thread(target=self._look_elsewhere, name="work-root-mounts",
                                                       daemon=True)
            self._looking_elsewhere.start()
        return mount_within(uploads) or self._mount_found_elsewhere

    def _look_elsewhere(self) -> None:
        """Find what other mount namespaces mount inside uploads/, again and again, in a thread of its own: their
        tables of a hundred thousand mounts took seconds to read, and every request waited (fifty-first hostile
        round). Read at most once a second, and less often as reading takes longer (a tenth of the time at most)."""
        while not self._stopping:
            started = time.monotonic()
            try:
                self._mount_found_elsewhere = mount_within(self.path / UPLOADS, other_namespaces_tables(), here=False)
            except OSError:  # uploads/ gone meanwhile: made again, and looked at next time
                self._mount_found_elsewhere = None
            time.sleep(max(ELSEWHERE_EVERY_S, 10 * (time.monotonic() - started)))

    def _is_held(self, status: os.stat_result) -> bool:
        held = os.fstat(self._descriptor)
        return held.st_nlink > 0 and stat.S_ISDIR(status.st_mode) and \
            (status.st_dev, status.st_ino) == (held.st_dev, held.st_ino)

    def _now_held(self) -> tuple[int, int]:
        """Hold the folder now at the path as the root, for the server's life; its identity."""
        os.close(self._descriptor)
        self._descriptor = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        held = os.fstat(self._descriptor)
        return held.st_dev, held.st_ino

    def _made_by_an_upload_since(self, status: os.stat_result) -> bool:
        """Whether the folder at the path is the one Gradio's upload cache made again after the held root went: a
        folder of this process's user (no link, no mount) holding only uploads/, everything in it changed since
        the held root was last seen. Refused, it stopped the server taking any work; held by its names alone, a
        user's folder renamed there was taken for the root (and removed at exit)."""
        try:
            if not stat.S_ISDIR(status.st_mode) or os.listdir(self.path) not in ([], [UPLOADS]):
                return False
        except OSError:
            return False
        uploads = self.path / UPLOADS
        return (not uploads.exists() or _is_gradios_upload_cache(uploads)) and \
            _all_made_since(self.path, self._seen_at)

    def _hold_again(self) -> bool:
        try:
            hold_for_life(self.path)
        except OSError:  # another process holds it: not this server's
            return False
        self._now_held()
        self._own = {}
        with contextlib.suppress(OSError):  # Gradio's, made since with the root (see _made_by_an_upload_since)
            uploads = os.lstat(self.path / UPLOADS)
            self._own[UPLOADS] = (uploads.st_dev, uploads.st_ino)
        log.warning("the work root %s was removed while the server ran (a cleaner of temporary files?); the "
                    "visitors' files in it are gone; the folder a visitor's upload made there since is held",
                    self.path)
        return True

    def _make_again(self) -> None:
        """Made under a hidden name, held, then renamed into place: never seen unheld at its path."""
        starting = Path(tempfile.mkdtemp(prefix=f".{WORK_ROOT_PREFIX}starting-", dir=self.path.parent))
        hold_for_life(starting)
        try:
            os.rename(starting, self.path)
        except OSError:  # something was put there meanwhile: not ours; said by the next check
            os.rmdir(starting)
            raise
        self._now_held()
        self._own = {}  # what the server made in the removed root went with it
        log.warning("the work root %s was removed while the server ran (a cleaner of temporary files?); the "
                    "visitors' files in it are gone; it is made again", self.path)


class WorkRootGuard:
    """An ASGI middleware: every request that may make Gradio write or serve a file (an upload, a file, an event
    of the page or the API, an MCP message) is answered 503, in words, while the work root or its uploads/ is not
    the server's own (`WorkRoot.check_uploads`). Gradio writes them by path, and wrote through a link or into a
    folder put at the root's path, long after the server had said it took no new work there."""

    GUARDED = ("/upload", "/file=", "/queue/join", "/call/", "/run/", "/api/", "/mcp")

    def __init__(self, app, work_root: WorkRoot):
        self.app, self.work_root = app, work_root

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and any(part in scope["path"] for part in self.GUARDED):
            try:
                self.work_root.check_uploads()
            except (XMemPPError, OSError) as error:
                words = str(error) if isinstance(error, XMemPPError) else UPLOADS_REPLACED
                await _refusal(scope, words)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _refusal(scope, words: str):
    """The guard's answer: 503 in words. An event (/queue/join) gets its words as JSON, and from a browser's page
    a status other than 503: the page reads a 503 as "This application is currently busy", and a body that is no
    JSON as "Could not parse server response: SyntaxError ..." (fifty-eighth hostile round). A page's request is told
    by the headers browsers send with a page's POST: Origin always, Sec-Fetch-Mode on HTTPS and localhost (sixtieth
    round: a page at the machine's address over HTTP sends no Sec-Fetch-Mode); a script's (gradio_client, whatever
    user agent it gives: fifty-ninth round) sends neither, and keeps its 503."""
    from starlette.responses import JSONResponse, PlainTextResponse

    if not scope["path"].endswith("/queue/join"):
        return PlainTextResponse(words, status_code=503)
    headers = dict(scope.get("headers") or [])
    from_a_page = b"sec-fetch-mode" in headers or b"origin" in headers
    status = 507 if from_a_page else 503  # 507: the server cannot store what the work needs
    return JSONResponse({"detail": words, "error": words}, status_code=status)


class UploadRefused(XMemPPError):
    """An upload received whole while the work root or its uploads/ stopped being the server's own (answered 503)."""


def guard_gradios_uploads(work_root: WorkRoot) -> None:
    """Keep Gradio's own file moves and removals in uploads/ out of what is not the server's, once per process.

    `WorkRootGuard` looks when a request begins; an upload's body may take minutes, and a folder mounted meanwhile
    at uploads/<sha> took the file (forty-ninth hostile round). So:
    - an upload is looked at again once its body is in, just before Gradio puts its files in place, and refused
      (UploadRefused, 503) with its received files removed;
    - Gradio's fallback when putting a file in place fails, a copy, goes: the rename fails only where the place is
      on another mount (a file or folder mounted there), and the copy wrote into that mount, over a user's file;
    - Gradio's clean-up of its cache (every half hour, and at exit) leaves everything while something is mounted in
      uploads/: it removed files by path, and took another namespace's mount point at such a path away."""
    import gradio.route_utils as route_utils
    import gradio.routes as routes

    if getattr(route_utils, "_xmempp_guarded", False):
        route_utils._xmempp_work_root = work_root
        return
    route_utils._xmempp_work_root = work_root
    parser = route_utils.GradioMultiPartParser

    class CheckedMultiPartParser(parser):
        async def parse(self):
            form = await super().parse()
            try:
                route_utils._xmempp_work_root.check_uploads()
            except (XMemPPError, OSError) as error:
                for received in form.getlist("files"):
                    with contextlib.suppress(AttributeError, OSError):
                        received.file.close()
                        os.unlink(received.file.name)
                raise UploadRefused(str(error) if isinstance(error, XMemPPError) else UPLOADS_REPLACED) from None
            return form

    route_utils.GradioMultiPartParser = CheckedMultiPartParser
    routes.move_uploaded_files_to_cache = _put_in_place_or_drop
    cleanup = route_utils.delete_files_created_by_app

    def delete_unless_mounted_in(blocks, age):
        mounted = route_utils._xmempp_work_root.mount_in_uploads()
        if mounted is not None:
            log.warning("Gradio's clean-up of its cached files is skipped: something is mounted at %s in the "
                        "uploads folder (the server removes its own files at exit, around it)", mounted)
            return
        for files in blocks.temp_file_sets:  # what a call's file object names in uploads/ and is no file there (a
            # folder; a path through a file, `v.zip/x`) stopped Gradio's every clean-up from then on (sixtieth and
            # sixty-first hostile rounds): Gradio skips only a file that is gone. It stays where it is.
            files -= {path for path in files if _stops_gradios_clean_up(path)}
        try:
            cleanup(blocks, age)
        except OSError as error:  # a read-only or failing disk: Gradio's traceback and "Application shutdown
            # failed" were printed at exit, though the server goes on to remove (or name) its own files
            log.warning("Gradio's clean-up of its cached files stopped: %s (the server removes its own files at "
                        "exit, and says what it cannot)", file_system_problem(error) or error.strerror or type(error).__name__)

    route_utils.delete_files_created_by_app = delete_unless_mounted_in
    route_utils._xmempp_guarded = True


def _stops_gradios_clean_up(path: str) -> bool:
    """Whether Gradio's clean-up would stop at `path`: a folder (os.remove refuses it), or a path whose look-up
    fails otherwise than "not there" (a part of it a file, a permission, a loop)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True


def guard_event_files(blocks, work_root: WorkRoot) -> None:
    """Have each event of `blocks` look at uploads/ before Gradio writes its files there: a call's files, copied in
    before it runs (a queued call runs long after its request passed `WorkRootGuard`), and each step's output
    images, written by their content's hash as the step ends. A user's file mounted at such a name while a
    visitor's run went on was written over by the run's next frame (fiftieth hostile round); now the event stops
    there, in words (gr.Error), and writes nothing."""
    import gradio as gr

    for step in ("preprocess_data", "postprocess_data"):
        original = getattr(blocks, step)

        async def checked(*args, _original=original, **kwargs):
            try:
                work_root.check_uploads()
            except (XMemPPError, OSError) as error:  # said to the caller; the log has the reason (no traceback)
                raise gr.Error(str(error) if isinstance(error, XMemPPError) else UPLOADS_REPLACED,
                               print_exception=False) from None
            return await _original(*args, **kwargs)

        setattr(blocks, step, checked)


def upload_refused_response(request, error: UploadRefused):
    """The upload route's answer for an upload refused once its body was in: 503 in words, as `WorkRootGuard`'s."""
    from starlette.responses import PlainTextResponse

    return PlainTextResponse(str(error), status_code=503)


def _put_in_place_or_drop(received: list[str], places: list[str]) -> None:
    """Gradio's move of the files whose rename into uploads/<sha>/ failed, without its copy: such a place is on
    another mount (something mounted there since the upload was checked), and the copy wrote into it."""
    for file, place in zip(received, places, strict=True):
        try:
            os.rename(file, place)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(file)
            log.warning("an upload was not put at %s (%s): something is mounted there; nothing was written into it",
                        place, error.strerror or error)


# Gradio files each upload under the SHA-256 of its content, received first as a tempfile beside them (an empty one
# of those is left behind after a browser's upload).
GRADIO_CACHE_FOLDER, GRADIO_RECEIVING_FILE = re.compile(r"[0-9a-f]{64}"), re.compile(r"tmp[a-z0-9_]{8}")
# A session's folder (mkdtemp's name) holds its videos, its recovered work and what is being built (hidden names).
API_CALL_FOLDER = re.compile(r"call-[a-z0-9_]{8}")  # each API call's folder, mkdtemp's name
SESSION_FOLDER, SESSION_ENTRY = re.compile(r"session-[a-z0-9_]{8}"), re.compile(r"video-\d+|recovered|\..+\.tmp(\.\w+)?")


def _removed_if_gradios(uploads: int, name: str) -> bool:
    """Remove the entry `name` of the open uploads folder when it is what Gradio's upload cache keeps there (as
    `_is_gradios_upload_cache` tells): a folder named by a SHA-256 holding plain files only, or an empty file
    Gradio received an upload into. False, and left, for anything else, and for what a mount keeps (another mount
    namespace's, spared as in every folder the server removes)."""
    try:
        status = os.lstat(name, dir_fd=uploads)
        if GRADIO_RECEIVING_FILE.fullmatch(name) and stat.S_ISREG(status.st_mode) and status.st_size == 0:
            return not remove_tree(name, uploads)
        if not (GRADIO_CACHE_FOLDER.fullmatch(name) and stat.S_ISDIR(status.st_mode)):
            return False
        cached = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=uploads)
        try:
            if not all(stat.S_ISREG(os.lstat(file, dir_fd=cached).st_mode) for file in os.listdir(cached)):
                return False
        finally:
            os.close(cached)
        return not remove_tree(name, uploads)
    except OSError:
        return False


def _is_gradios_upload_cache(folder: Path, receiving: bool = False) -> bool:
    """Whether `folder` holds only what Gradio's upload cache keeps: folders named by a SHA-256, each of plain
    files, and (`receiving`: a dead server's) the `tmp<8>` files Gradio receives uploads into beside them. A user's
    folder renamed onto uploads/, its files written in the moment before, was taken for the cache Gradio made again
    (by its times alone), and removed at exit; a killed server's root kept its empty tmp file, and stayed for good.
    Only an empty one is taken: a user's file of that shape of name went with the root (forty-third hostile round);
    one a killed upload filled in part leaves the root, named in the log."""
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if receiving and GRADIO_RECEIVING_FILE.fullmatch(entry.name) and entry.is_file(follow_symlinks=False) \
                        and entry.stat(follow_symlinks=False).st_size == 0:  # a user's tmpnotes_01 holds something
                    continue
                if not (GRADIO_CACHE_FOLDER.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)):
                    return False
                with os.scandir(entry.path) as files:
                    if not all(file.is_file(follow_symlinks=False) for file in files):
                        return False
    except OSError:
        return False
    return True


def _all_made_since(folder: Path, since: float) -> bool:
    """Whether `folder` (no link, no mount, of this process's user) and everything in it changed after `since`,
    less a second for file systems that keep times coarsely: what Gradio's upload made there since, not a user's
    older folder renamed there (a rename keeps the times of what is inside). At most 10,000 entries are looked at."""
    since -= 1.0
    try:
        status = os.lstat(folder)
    except OSError:
        return False
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid() or status.st_mtime < since or \
            os.path.realpath(folder) in (mount_points() or set()):
        return False
    pending, seen = [folder], 0
    while pending:
        inside = pending.pop()
        try:
            with os.scandir(inside) as entries:
                for entry in entries:
                    seen += 1
                    if seen > 10_000 or entry.stat(follow_symlinks=False).st_mtime < since:
                        return False
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
        except OSError:
            return False
    return True


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # past what a pid can be: a folder named so by no server alive
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def hold_for_life(folder: Path) -> None:
    """Lock `folder` (flock) until this process ends, when the kernel lets go of it, killed or not: the proof that
    a work root's server still runs. Its pid alone proved nothing across PID namespaces (a container sharing
    TMPDIR): a second server there removed a running server's work root, its visitors' frames and masks with it."""
    if fcntl is None:
        return
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)  # never closed; not passed on to child processes
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _server_gone(folder: Path, pid: int) -> bool:
    """Whether the server of a work root has ended: no process holds its lock (`hold_for_life`). The lock decides,
    not the pid in the root's name: a pid names a process only in its own PID namespace. A server that ran as pid 1
    of a container and was killed left its root for good: a start in another namespace is pid 1 itself, and a start
    on the host sees init alive. Where there are no locks (Windows), no process of that pid here."""
    if fcntl is None:
        return pid != os.getpid() and not _process_alive(pid)
    return _held_by_nobody(folder)


def _held_by_nobody(folder: Path) -> bool:
    """Whether no process holds `folder`'s lock (`hold_for_life`); a folder that cannot be opened counts as held."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # cannot be looked at: left
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held: its server runs, in another PID namespace
        return False
    finally:
        os.close(descriptor)
    return True


def _holds_a_locked_folder(folder: Path) -> bool:
    """Whether a folder in `folder` (itself left out) is locked by a process: a running server's work root moved
    into another root's place, or a run's output folder. Looked at without following links; what cannot be opened
    is no lock that can be seen."""
    if fcntl is None:
        return False
    pending = [folder]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            try:
                descriptor = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # refused while anyone holds it, even shared
            except BlockingIOError:
                return True
            except OSError:
                pass
            finally:
                os.close(descriptor)
            pending.append(Path(entry.path))
    return False


RECENT_S = 2.0  # a root changed this lately may be a running server's, made again and not yet held


def _changed_lately(folder: Path) -> bool:
    """Whether `folder` or an entry at its top changed in the last RECENT_S: a running server's root removed and
    made again by a visitor's upload is held within a moment (`WorkRoot.watch`), and a start in that moment took
    it for a dead server's. A killed server's root changes no more."""
    now = time.time()
    try:
        with os.scandir(folder) as entries:
            times = [folder.lstat().st_mtime, *(entry.stat(follow_symlinks=False).st_mtime for entry in entries)]
    except OSError:
        return False
    return any(now - changed < RECENT_S for changed in times)


def _names_no_server_makes(folder: Path) -> str:
    """The names in `folder` that no server makes in a work root, said briefly; empty when there are none (or
    when it cannot be read: its removal then says what stops it). An uploads/ that is no upload cache Gradio makes,
    or an api/ holding more than call folders, is such a name too: a user's folder renamed there, then the server
    killed, went with the root at the next start."""
    try:
        foreign = sorted(name for name in os.listdir(folder) if not _is_a_servers_own(folder / name))
    except OSError:
        return ""
    more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
    return f"{foreign[0]!r}{more}" if foreign else ""


def _mounted_elsewhere(path: Path) -> bool:
    """Whether `path` is a mount point of another mount namespace (`mounted_in_another_namespace`)."""
    try:
        parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        elsewhere = mounts_elsewhere(devices_of(parent))
        return mounted_in_another_namespace(path.name, parent, elsewhere)
    finally:
        os.close(parent)


def _is_a_servers_own(entry: Path) -> bool:
    """Whether `entry`, at the top of a dead server's root, is what a server makes there, by its name and what it
    holds: a user's folder renamed onto uploads/, api/ or a session's name (or a file put there) went with the root
    at the next start."""
    try:
        if not entry.is_dir() or entry.is_symlink():
            return False
        if entry.name == UPLOADS:
            return _is_gradios_upload_cache(entry, receiving=True)
        if entry.name == API_CALLS:  # mkdtemp's folders: a user's call-notes.txt went with the root
            with os.scandir(entry) as calls:
                return all(API_CALL_FOLDER.fullmatch(call.name) and call.is_dir(follow_symlinks=False)
                           for call in calls)
        return bool(SESSION_FOLDER.fullmatch(entry.name)) and all(SESSION_ENTRY.fullmatch(name)
                                                                  for name in os.listdir(entry))
    except OSError:
        return False


def remove_stale_work_roots(parent: Path) -> list[Path]:
    """Delete the work roots of app servers that died without cleaning up (killed, crashed); returns them.

    A server removes its own work root when it exits; a killed one cannot, and every visitor's frames stay behind.
    One that is or holds a mount point is left: removing it would only leave the folder mounted there, anyone's,
    and the folders holding it.
    """
    removed, mounts = [], mount_points()
    for folder in parent.glob(f"{WORK_ROOT_PREFIX}*-*"):
        if folder.is_symlink() or not folder.is_dir():  # not a work root, whatever its name: left, and not said removed
            continue
        named = WORK_ROOT_NAME.fullmatch(folder.name)  # a copy of a root kept as `xmempp-app-<pid>-saved` went whole
        if named is None or not _server_gone(folder, int(named.group(1))):
            continue
        if _changed_lately(folder):  # a running server's root made again, in the moment before it holds it
            log.warning("left %s: it changed in the last %g s, so a server may be using it", folder, RECENT_S)
            continue
        if _holds_a_locked_folder(folder):  # a running server's root (or a run) moved into it: in use
            log.warning("left %s: a folder in it is in use by a running process", folder)
            continue
        foreign = _names_no_server_makes(folder)
        if foreign:  # someone's folder named like a work root (renamed onto a removed one's path)
            log.warning("left %s: it holds %s, which no xmempp server makes there", folder, foreign)
            continue
        risk = mount_risk(folder, mounts)
        if risk is not None:
            log.warning("left %s: %s", folder, risk)
            continue
        remove_own_folder(folder)  # never what was mounted in it since; a warning says what stays
        if not os.path.lexists(folder):  # made immutable, or anyone's: not said removed
            removed.append(folder)
    return removed


STARTING_NAME = re.compile(rf"\.{WORK_ROOT_PREFIX}starting-[a-z0-9_]{{8}}")  # mkdtemp's, before its rename


def remove_unfinished_starts(parent: Path) -> list[Path]:
    """Delete the hidden folders of starts killed between making their work root and naming it; returns them.

    Such a folder is empty, held by nobody and changes no more: a start in progress holds its own within a moment
    of making it (so one that changed lately is left), and `rmdir` never takes a folder holding anything, nor a
    mount point."""
    removed = []
    if fcntl is None:  # no locks (Windows): a start in progress cannot be told from a killed one
        return removed
    mounts = mount_points()
    for folder in parent.glob(f".{WORK_ROOT_PREFIX}starting-*"):
        if not STARTING_NAME.fullmatch(folder.name) or folder.is_symlink() or not folder.is_dir():
            continue
        status = folder.lstat()
        if status.st_uid != os.getuid() or stat.S_IMODE(status.st_mode) != 0o700:  # not as mkdtemp made it here
            continue
        if not _held_by_nobody(folder) or _changed_lately(folder):
            continue
        # a mount point, of any namespace: rmdir detached another namespace's mount (fiftieth hostile round)
        if mount_risk(folder, mounts) is not None or _mounted_elsewhere(folder):
            continue
        with contextlib.suppress(OSError):  # not empty, a mount point, or gone meanwhile: left as it is
            os.rmdir(folder)
            removed.append(folder)
    return removed


def make_work_root() -> Path:
    """This server's folder for every session's files (under $TMPDIR), deleted when the server exits."""
    parent = Path(tempfile.gettempdir())
    for folder in remove_stale_work_roots(parent):
        log.info("removed %s, left by a server that is no longer running", folder)
    for folder in remove_unfinished_starts(parent):
        log.info("removed %s, left by a server killed while it started", folder)
    # Made under a hidden name, locked, then named as a work root: no other server's clean-up sees it unlocked.
    starting = Path(tempfile.mkdtemp(prefix=f".{WORK_ROOT_PREFIX}starting-", dir=parent))
    hold_for_life(starting)
    work_root = parent / f"{WORK_ROOT_PREFIX}{os.getpid()}-{starting.name.rsplit('-', 1)[1]}"
    os.rename(starting, work_root)  # removed at exit by its WorkRoot
    log.info("session files go to %s", work_root)
    return work_root


def use_upload_folder(work_root: Path) -> Path:
    """Gradio's upload cache inside this server's work root (Gradio reads GRADIO_TEMP_DIR when the app is built):
    visitors' uploads then go with the work root, at exit and, after a kill, at the next start. Left in Gradio's
    shared /tmp/gradio, a killed server's uploads stayed there for good."""
    folder = work_root / "uploads"
    folder.mkdir(exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    return folder
