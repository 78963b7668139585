"""outfile — how corobench's scripts write a file the user named, without
ever clobbering what the name is (the rule loadgen's outfile.c follows too):

  "-"                          standard output;
  a new file, or a regular file with no other hard link, in a folder that
  takes new files              written to NAME.part.PID beside it, then renamed
                               over it: a reader sees the old or the new file,
                               never half of one (the old file's permissions
                               are kept);
  anything else that exists    written in place, through it: a symlink stays a
  (a symlink, a FIFO, a        symlink and fills its target, a FIFO's reader
  device, a file with other    gets the whole file, /dev/null stays a device.
  hard links)

check() says before any work whether a name can be written, in one line, so
that a run does not fail at its end. Standard library only; the scripts import
it from their own folder.
"""
import json
import os
import stat
import sys


class OutfileError(Exception):
    """A name that cannot be written; str() is one line."""


def _dir_of(path):
    return os.path.dirname(path) or "."


def _replaceable(path, st):
    return (stat.S_ISREG(st.st_mode) and st.st_nlink == 1
            and os.access(_dir_of(path), os.W_OK | os.X_OK))


def _check_new(path):
    d = _dir_of(path)
    if not os.path.exists(d):
        raise OutfileError("%s: folder %s does not exist" % (path, d))
    if not os.path.isdir(d):
        raise OutfileError("%s: %s is not a folder" % (path, d))
    if not os.access(d, os.W_OK | os.X_OK):
        raise OutfileError("%s: cannot create a file in %s: permission denied" % (path, d))


def check(path):
    """Raises OutfileError (one line) unless path can be written by the rule."""
    if path == "-":
        return
    for _ in range(9):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return _check_new(path)
        except OSError as e:
            raise OutfileError("%s: %s" % (path, e.strerror))
        if stat.S_ISLNK(st.st_mode) and not os.path.exists(path):
            # a link to a file not there yet: writing through it creates it
            target = os.readlink(path)
            path = target if os.path.isabs(target) else os.path.join(_dir_of(path), target)
            continue
        if os.path.isdir(path):
            raise OutfileError("%s: is a folder" % path)
        if not os.access(path, os.W_OK):
            raise OutfileError("%s: not writable" % path)
        return
    raise OutfileError("%s: too many levels of symbolic links" % path)


def check_dir(d):
    """Raises OutfileError unless files can be made in folder d (made if it
    is missing and its parent takes it)."""
    if os.path.exists(d) and not os.path.isdir(d):
        raise OutfileError("%s: is not a folder" % d)
    try:
        os.makedirs(d, exist_ok=True)
    except OSError as e:
        raise OutfileError("%s: cannot make the folder: %s" % (d, e.strerror))
    if not os.access(d, os.W_OK | os.X_OK):
        raise OutfileError("%s: cannot create files in it: permission denied" % d)


def write_bytes(path, data):
    """Writes data to path by the rule above."""
    if path == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not _replaceable(path, st):
        with open(path, "wb") as f:  # through it: the link, FIFO or device stays
            f.write(data)
        return
    tmp = "%s.part.%d" % (path, os.getpid())
    if os.path.lexists(tmp):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        if st is not None:
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_text(path, text, encoding="utf-8"):
    write_bytes(path, text.encode(encoding))


def write_json(path, doc, **dump_args):
    """doc as JSON (json.dumps' arguments), with a final newline."""
    write_text(path, json.dumps(doc, **dump_args) + "\n")


def part_name(path):
    """Where another program (gnuplot, a browser) should write what then
    goes to path with install(): beside it, so the rename stays in one
    file system."""
    return "%s.part.%d" % (path, os.getpid())


def install(part, path):
    """Moves the file another program wrote at part (part_name(path)) to
    path by the rule: renamed over a new or plain file, else its bytes
    written through the name; part is gone afterwards either way."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if path != "-" and (st is None or _replaceable(path, st)):
        if st is not None:
            os.chmod(part, stat.S_IMODE(st.st_mode))
        os.replace(part, path)
        return
    try:
        with open(part, "rb") as f:
            write_bytes(path, f.read())
    finally:
        os.unlink(part)


def copy(src, path):
    """src's bytes to path by the rule."""
    with open(src, "rb") as f:
        write_bytes(path, f.read())


def point(link, target_name, content):
    """The "latest" name: link becomes a symlink to target_name (a file in
    the same folder) when it is missing, a plain file or a symlink to a bare
    name (one this made); anything else the user put there (a FIFO, a device,
    a symlink elsewhere, a file with other hard links) gets content's bytes
    through it instead, and stays what it is."""
    try:
        st = os.lstat(link)
    except FileNotFoundError:
        st = None
    ours = st is not None and stat.S_ISLNK(st.st_mode) and "/" not in os.readlink(link)
    if st is not None and not ours and not _replaceable(link, st):
        copy(content, link)
        return
    tmp = os.path.join(_dir_of(link), ".%s.%d" % (os.path.basename(link), os.getpid()))
    try:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(target_name, tmp)
        os.replace(tmp, link)
    except OSError:  # a file system without symlinks: a copy
        copy(content, link)
