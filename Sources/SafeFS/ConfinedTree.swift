#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A folder into which an untrusted tree (an archive, a UnixFS DAG) is written.
///
/// The rules, whatever the names and link targets say:
/// - every path is opened component by component from the root's descriptor with `openat` and
///   `O_NOFOLLOW`, so no write ever passes through a symlink, whenever it was made;
/// - files are created with `O_EXCL` and symlinks with `symlinkat`, so nothing existing is
///   overwritten or written through: a name given twice is refused;
/// - names are plain components (no empty name, `.`, `..` or NUL);
/// - a symlink's target is relative, and once the whole tree is written (`finish()`) every link
///   is resolved physically, hop by hop through the links actually on disk, and must stay
///   inside the root. Checking at the end matters: a link added later can change where an
///   earlier one points (`a -> x/y/../..` is harmless until `x -> .` appears).
///
/// Only the root's own path is trusted; it is the caller's folder.
public final class ConfinedTree {
    /// An untrusted tree that would leave its folder, or could not be written.
    public struct Error: Swift.Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The most links followed while resolving one symlink (Linux's own limit).
    public static let maxLinkHops = 40

    public let root: URL
    private let rootFD: Int32
    private var links: [[String]] = []

    /// Opens `root`, creating it (and its parents, which are the caller's) when missing. An
    /// existing root must be a real directory, not a link.
    public init(creating root: URL) throws {
        self.root = root.standardizedFileURL
        try FileManager.default.createDirectory(at: self.root, withIntermediateDirectories: true)
        let fd = open(self.root.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw Error("cannot open \(self.root.path): \(Self.errnoText())") }
        rootFD = fd
    }

    deinit { close(rootFD) }

    /// Splits a relative path into plain components; `.` and empty parts are dropped, `..`,
    /// NUL and an empty result are refused.
    public static func components(_ path: String) throws -> [String] {
        var parts: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            guard part != "..", !part.contains("\0") else {
                throw Error("refusing \"\(path)\": a name in it climbs out of the folder or holds a NUL byte")
            }
            parts.append(String(part))
        }
        return parts
    }

    /// True when `name` can be one entry of a directory as it stands.
    public static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\0")
    }

    /// Creates the directory at `path` and any missing parents.
    public func makeDirectory(_ path: [String], mode: mode_t = 0o755) throws {
        let fd = try openDirectory(path[...], create: true, mode: mode)
        close(fd)
    }

    /// Creates a new file at `path` (parents made as needed) and returns it open for writing.
    /// An existing entry of that name, of any kind, is refused.
    public func createFile(_ path: [String], mode: mode_t = 0o644) throws -> FileHandle {
        guard let name = path.last else { throw Error("refusing a file with an empty name") }
        let parent = try openDirectory(path.dropLast(), create: true)
        defer { close(parent) }
        let fd = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0o777)
        guard fd >= 0 else {
            if errno == EEXIST { throw Error("refusing \(Self.join(path)): the name is given twice") }
            throw Error("cannot create \(Self.join(path)): \(Self.errnoText())")
        }
        // The umask may have narrowed the mode; set exactly what was asked, never set-id bits.
        _ = fchmod(fd, mode & 0o777)
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    /// Creates a symlink at `path` pointing at `target`, which must be relative; where it
    /// leads is checked by `finish()`.
    public func makeSymlink(_ path: [String], target: String) throws {
        guard let name = path.last else { throw Error("refusing a symlink with an empty name") }
        guard !target.isEmpty, !target.hasPrefix("/"), !target.contains("\0") else {
            throw Error("refusing symlink \(Self.join(path)) -> \(target): only relative links inside the folder are allowed")
        }
        let parent = try openDirectory(path.dropLast(), create: true)
        defer { close(parent) }
        guard symlinkat(target, parent, name) == 0 else {
            if errno == EEXIST { throw Error("refusing \(Self.join(path)): the name is given twice") }
            throw Error("cannot create symlink \(Self.join(path)): \(Self.errnoText())")
        }
        links.append(path)
    }

    /// Checks that every symlink written resolves inside the root, following the links on
    /// disk. Call it once the tree is complete; on failure the caller removes the tree.
    public func finish() throws {
        for link in links {
            try checkInside(link)
        }
    }

    /// Where the physical resolution of the link at `path` goes; throws when it leaves.
    private func checkInside(_ path: [String]) throws {
        var resolved = Array(path.dropLast())
        var pending: [String] = try readLink(path).split(separator: "/").reversed().map(String.init)
        var hops = 1
        while let part = pending.popLast() {
            if part.isEmpty || part == "." { continue }
            if part == ".." {
                guard resolved.popLast() != nil else {
                    throw Error("refusing symlink \(Self.join(path)): it points outside the folder")
                }
                continue
            }
            let candidate = resolved + [part]
            var info = stat()
            // `resolved` holds only real directories, so this lookup passes through no link.
            if fstatat(rootFD, Self.join(candidate), &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_mode & S_IFMT == S_IFLNK {
                hops += 1
                guard hops <= Self.maxLinkHops else {
                    throw Error("refusing symlink \(Self.join(path)): more than \(Self.maxLinkHops) links to follow")
                }
                let target = try readLink(candidate)
                guard !target.hasPrefix("/") else {
                    throw Error("refusing symlink \(Self.join(candidate)) -> \(target): absolute")
                }
                pending.append(contentsOf: target.split(separator: "/").reversed().map(String.init))
            } else {
                // A real entry, or a missing one (a dangling link is harmless): walk on.
                resolved = candidate
            }
        }
    }

    private func readLink(_ path: [String]) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlinkat(rootFD, Self.join(path), &buffer, buffer.count - 1)
        guard count >= 0 else { throw Error("cannot read symlink \(Self.join(path)): \(Self.errnoText())") }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Opens the directory at `path` below the root without following any link, creating
    /// missing components when asked. The caller closes the descriptor.
    private func openDirectory(_ path: ArraySlice<String>, create: Bool, mode: mode_t = 0o755) throws -> Int32 {
        var current = dup(rootFD)
        guard current >= 0 else { throw Error("cannot open \(root.path): \(Self.errnoText())") }
        for (index, name) in path.enumerated() {
            guard Self.isPlainName(name) else {
                close(current)
                throw Error("refusing \"\(name)\": not a plain file name")
            }
            if create, mkdirat(current, name, mode & 0o777) != 0, errno != EEXIST {
                let text = Self.errnoText()
                close(current)
                throw Error("cannot create directory \(Self.join(Array(path.prefix(index + 1)))): \(text)")
            }
            let next = openat(current, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let failure = errno
            close(current)
            guard next >= 0 else {
                let where_ = Self.join(Array(path.prefix(index + 1)))
                if failure == ELOOP || failure == ENOTDIR {
                    throw Error("refusing to write below \(where_): it is a symlink or a file, not a folder")
                }
                throw Error("cannot open \(where_): \(String(cString: strerror(failure)))")
            }
            current = next
        }
        return current
    }

    static func join(_ path: [String]) -> String { path.isEmpty ? "." : path.joined(separator: "/") }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// Checks on paths that are about to be handed to something that follows links (a bind mount,
/// a container runtime).
public enum PhysicalPath {
    /// The path with every link resolved, when it exists and lies inside `folder` (itself
    /// resolved); nil otherwise.
    public static func resolvedInside(_ path: URL, folder: URL) -> String? {
        guard let base = realpathString(folder.path), let resolved = realpathString(path.path) else { return nil }
        guard resolved == base || resolved.hasPrefix(base.hasSuffix("/") ? base : base + "/") else { return nil }
        return resolved
    }

    static func realpathString(_ path: String) -> String? {
        guard let pointer = realpath(path, nil) else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }
}
