import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Writes files so that readers only ever see a whole file, the old or the new one, and a crash or power loss
/// never leaves a half-written file under the final name:
/// 1. the bytes go to an unnamed file in the target folder (Linux `O_TMPFILE`: it has no name, so a process
///    killed while writing a model-sized checkpoint leaves nothing behind), or, where the file system does not
///    support that, to a named temporary file `.<name>.tmp-<pid>@<host>~<random>`;
/// 2. the file is flushed to disk (`fsync`), given a temporary name and renamed over the target;
/// 3. the folder is flushed, so the new directory entry survives a power loss (ext4 and XFS need this).
/// Temporary names carry the host, because shards on several machines share one output folder: only the
/// host that made a temporary file can tell whether its process is dead (`TemporaryFiles.removeStale`).
public enum AtomicFile {
    /// `.<name>.tmp-<pid>@<host>~<random>`: the temporary name of a write of `name` by this process.
    public static func temporaryName(for name: String) -> String {
        ".\(name).tmp-\(getpid())@\(hostName)~\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
    }

    /// This machine's name as temporary names carry it ('@' and '~' never occur in a host name).
    public static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(nulTerminated: buffer).filter { $0 != "@" && $0 != "~" && $0 != "/" }
        return name.isEmpty ? "localhost" : name
    }()

    /// Linux's `O_TMPFILE` (`__O_TMPFILE | O_DIRECTORY`; a function-like macro Swift does not import). The value of
    /// `__O_TMPFILE` is the same on x86-64 and AArch64; elsewhere `open` fails and the named path is taken.
    static let oTmpFile: Int32 = 0o20000000 | O_DIRECTORY

    public static func write(_ data: Data, to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        func fail(_ what: String, _ code: Int32 = errno) -> FileError {
            FileError(file: url.path, reason: "\(what): \(String(cString: strerror(code)))")
        }
        let tmp = dir.appendingPathComponent(temporaryName(for: url.lastPathComponent))
        var fd = open(dir.path, oTmpFile | O_WRONLY | O_CLOEXEC, 0o644)
        let anonymous = fd >= 0
        if !anonymous {
            fd = open(tmp.path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw fail("cannot create a temporary file in \(dir.path)") }
        }
        var named = !anonymous
        defer { if named { unlink(tmp.path) } }
        do {
            defer { close(fd) }
            try data.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    // At most 1 GiB per call: Linux writes at most 0x7ffff000 bytes at once.
                    let n = Glibc.write(fd, raw.baseAddress! + offset, min(raw.count - offset, 1 << 30))
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw fail("cannot write")
                    }
                    offset += n
                }
            }
            guard fsync(fd) == 0 else { throw fail("cannot flush to disk") }
            if anonymous {
                guard linkat(AT_FDCWD, "/proc/self/fd/\(fd)", AT_FDCWD, tmp.path, AT_SYMLINK_FOLLOW) == 0 else {
                    throw fail("cannot name the written file")
                }
                named = true
            }
        }
        guard rename(tmp.path, url.path) == 0 else { throw fail("cannot rename into place") }
        named = false
        syncDirectory(dir)
    }

    /// Writes `url` through a library that wants a path (libtiff): `body` writes a named temporary file in the
    /// same folder, which is then flushed and renamed over `url` (`commit`); on an error it is removed.
    public static func write(to url: URL, _ body: (URL) throws -> Void) throws {
        let tmp = url.deletingLastPathComponent().appendingPathComponent(temporaryName(for: url.lastPathComponent))
        do {
            try body(tmp)
            try commit(tmp, to: url)
        } catch {
            unlink(tmp.path)
            throw error
        }
    }

    /// Flushes the finished file `temporary` to disk and renames it over `url` (same folder), then flushes the
    /// folder.
    public static func commit(_ temporary: URL, to url: URL) throws {
        let fd = open(temporary.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw FileError(
                file: url.path, reason: "cannot open the written file: \(String(cString: strerror(errno)))")
        }
        let synced = fsync(fd) == 0
        close(fd)
        guard synced else {
            throw FileError(file: url.path, reason: "cannot flush to disk: \(String(cString: strerror(errno)))")
        }
        guard rename(temporary.path, url.path) == 0 else {
            throw FileError(
                file: url.path, reason: "cannot rename into place: \(String(cString: strerror(errno)))")
        }
        syncDirectory(url.deletingLastPathComponent())
    }

    /// Flushes a folder's entries (after a rename or an unlink in it) to disk; failures are ignored, as some
    /// file systems do not support it and the data itself is already on disk.
    public static func syncDirectory(_ dir: URL) {
        let fd = open(dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}

/// Temporary files of `AtomicFile` left in a folder tree by killed runs.
public enum TemporaryFiles {
    /// What a temporary file's name says about its writer.
    public struct Owner: Equatable {
        public let pid: Int32
        /// nil for names written before temporary names carried the host.
        public let host: String?

        public init(pid: Int32, host: String?) {
            self.pid = pid
            self.host = host
        }
    }

    /// The writer of a temporary file named `name`, or nil when the name is not a temporary file's.
    public static func owner(of name: String) -> Owner? {
        guard name.hasPrefix("."), let range = name.range(of: ".tmp-", options: .backwards) else { return nil }
        let rest = name[range.upperBound...]
        let digits = rest.prefix { $0.isNumber }
        guard let pid = Int32(digits) else { return nil }
        let afterPid = rest.dropFirst(digits.count)
        if afterPid.hasPrefix("@"), let tilde = afterPid.firstIndex(of: "~") {
            return Owner(pid: pid, host: String(afterPid[afterPid.index(after: afterPid.startIndex)..<tilde]))
        }
        return afterPid.hasPrefix("-") ? Owner(pid: pid, host: nil) : nil
    }

    /// Files older than this are dead whoever wrote them (no write of Tessera's takes a day).
    public static let maximumAge: TimeInterval = 24 * 3600

    /// Deletes the temporary files under `folder` that are provably dead: written on this host by a process that
    /// no longer exists, or older than a day. Another host's files are left alone (its process may be running).
    /// - Returns: the files removed.
    @discardableResult
    public static func removeStale(under folder: URL, now: Date = Date()) -> [URL] {
        guard
            let walker = FileManager.default.enumerator(
                at: folder, includingPropertiesForKeys: [.contentModificationDateKey])
        else {
            return []
        }
        var removed: [URL] = []
        for case let url as URL in walker {
            guard let owner = owner(of: url.lastPathComponent) else { continue }
            let modified = (try? url.resourceValues(forKeys: [.contentModificationDateKey]))?.contentModificationDate
            let old = modified.map { now.timeIntervalSince($0) > maximumAge } ?? false
            let deadHere = owner.host == AtomicFile.hostName && kill(owner.pid, 0) != 0 && errno == ESRCH
            guard old || deadHere else { continue }
            if (try? FileManager.default.removeItem(at: url)) != nil { removed.append(url) }
        }
        return removed
    }
}
