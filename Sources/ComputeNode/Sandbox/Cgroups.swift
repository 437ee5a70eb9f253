import Foundation
import Models

/// Makes one cgroup per execution, under cgroup v2 (unified) or v1 (the `pids`, `memory`,
/// `cpu` and `cpuacct` hierarchies), to bound its processes, memory and CPU, to find and kill
/// every process it started, and to meter what they used.
struct CgroupController: Sendable, CustomStringConvertible {
    enum Version: Sendable {
        /// `cpuacct` is nil where it is mounted together with `cpu` (its files are there).
        case v1(pids: URL, memory: URL?, cpu: URL?, cpuacct: URL?)
        case v2(URL)
    }

    let version: Version
    /// The cgroup filesystem's mount point.
    var root: URL = URL(fileURLWithPath: "/sys/fs/cgroup")

    var description: String {
        switch version {
        case .v1: return "cgroup v1"
        case .v2: return "cgroup v2"
        }
    }

    /// This host's hierarchy, found once for every engine of the node (nil: none usable).
    static let onHost = detect()

    /// Finds a cgroup hierarchy this process may create groups in; nil when there is none.
    static func detect(root: URL = URL(fileURLWithPath: "/sys/fs/cgroup")) -> CgroupController? {
        let fm = FileManager.default
        if fm.fileExists(atPath: root.appendingPathComponent("cgroup.controllers").path) {
            // Unified: a `cod` parent with the controllers delegated to its children.
            let parent = root.appendingPathComponent("cod")
            do {
                try fm.createDirectory(at: parent, withIntermediateDirectories: true)
                try write("+pids +memory +cpu", to: root.appendingPathComponent("cgroup.subtree_control"))
                try write("+pids +memory +cpu", to: parent.appendingPathComponent("cgroup.subtree_control"))
                return CgroupController(version: .v2(parent), root: root)
            } catch {
                return nil
            }
        }
        let pids = root.appendingPathComponent("pids")
        guard fm.fileExists(atPath: pids.appendingPathComponent("cgroup.procs").path) else { return nil }
        func parent(_ controller: String) -> URL? {
            let url = root.appendingPathComponent(controller).appendingPathComponent("cod")
            guard fm.fileExists(atPath: root.appendingPathComponent(controller).appendingPathComponent("cgroup.procs").path),
                (try? fm.createDirectory(at: url, withIntermediateDirectories: true)) != nil
            else { return nil }
            return url
        }
        guard let pidsParent = parent("pids") else { return nil }
        let cpu = parent("cpu")
        // Often `cpu` and `cpuacct` are one hierarchy under two names.
        let sameHierarchy = root.appendingPathComponent("cpu").resolvingSymlinksInPath().path
            == root.appendingPathComponent("cpuacct").resolvingSymlinksInPath().path
        let cpuacct = sameHierarchy ? nil : parent("cpuacct")
        return CgroupController(version: .v1(pids: pidsParent, memory: parent("memory"), cpu: cpu, cpuacct: cpuacct), root: root)
    }

    /// The cgroup path (from the hierarchy's root) of the group `name`, as container daemons
    /// take it for a `CgroupParent`.
    func path(of name: String) -> String { "/cod/\(name)" }

    static func write(_ text: String, to url: URL) throws {
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.write(contentsOf: Data(text.utf8))
    }

    /// A new group with the execution's limits; `maxProcesses` nil sets no process limit, and
    /// `delegating` lets a container daemon make the groups of its containers inside it.
    func create(name: String, resources: Resources, maxProcesses: Int?, delegating: Bool = false) throws -> Cgroup {
        let fm = FileManager.default
        var directories: [URL] = []
        func make(_ parent: URL) throws -> URL {
            let url = parent.appendingPathComponent(name)
            try? fm.removeItem(at: url)
            try fm.createDirectory(at: url, withIntermediateDirectories: false)
            directories.append(url)
            return url
        }
        do {
            switch version {
            case .v2(let parent):
                let group = try make(parent)
                if let maxProcesses { try Self.write("\(maxProcesses)", to: group.appendingPathComponent("pids.max")) }
                if resources.memory > 0 {
                    try Self.write("\(resources.memory)", to: group.appendingPathComponent("memory.max"))
                    try? Self.write("0", to: group.appendingPathComponent("memory.swap.max"))
                }
                if resources.cpu > 0 {
                    try? Self.write("\(max(Int(resources.cpu * 100_000), 1000)) 100000", to: group.appendingPathComponent("cpu.max"))
                }
                if delegating { try Self.write("+pids +memory +cpu", to: group.appendingPathComponent("cgroup.subtree_control")) }
                return Cgroup(directories: directories, version: version, memory: group, accounting: group, cpuGroups: [group], name: name, root: root)
            case .v1(let pidsParent, let memoryParent, let cpuParent, let cpuacctParent):
                let pids = try make(pidsParent)
                if let maxProcesses { try Self.write("\(maxProcesses)", to: pids.appendingPathComponent("pids.max")) }
                var memoryGroup: URL?
                if let memoryParent {
                    let memory = try make(memoryParent)
                    memoryGroup = memory
                    if resources.memory > 0 {
                        try Self.write("\(resources.memory)", to: memory.appendingPathComponent("memory.limit_in_bytes"))
                        try? Self.write("\(resources.memory)", to: memory.appendingPathComponent("memory.memsw.limit_in_bytes"))
                    }
                }
                // A CPU group even without a quota: the scheduler then weighs the whole sandbox as
                // one, so however many processes it starts, the node keeps its share.
                var accounting: URL?
                var cpuGroups: [URL] = []
                if let cpuParent {
                    let cpu = try make(cpuParent)
                    accounting = cpu
                    cpuGroups.append(cpu)
                    if resources.cpu > 0 {
                        try? Self.write("100000", to: cpu.appendingPathComponent("cpu.cfs_period_us"))
                        try? Self.write("\(max(Int(resources.cpu * 100_000), 1000))", to: cpu.appendingPathComponent("cpu.cfs_quota_us"))
                    }
                }
                if let cpuacctParent {
                    accounting = try make(cpuacctParent)
                    cpuGroups.append(accounting!)
                }
                return Cgroup(
                    directories: directories, version: version, memory: memoryGroup, accounting: accounting, cpuGroups: cpuGroups, name: name,
                    root: root)
            }
        } catch {
            for directory in directories.reversed() { try? fm.removeItem(at: directory) }
            throw CodError(.executionFailed, "cannot create the execution's cgroup: \(error)")
        }
    }
}

/// One execution's cgroup (a folder per hierarchy under v1).
struct Cgroup: Sendable {
    let directories: [URL]
    let version: CgroupController.Version
    /// Where its memory is accounted and its CPU time counted; nil where the hierarchy is
    /// missing (then that is not measured).
    let memory: URL?
    let accounting: URL?
    /// The groups that limit and count its CPU (`cpu` and `cpuacct` under v1).
    let cpuGroups: [URL]
    /// Its name under each hierarchy's `cod` folder, and the cgroup filesystem's root.
    let name: String
    let root: URL

    var description: String {
        if case .v1 = version { return "cgroup v1" }
        return "cgroup v2"
    }

    /// The files a process writes its PID to, to join.
    var procsFiles: [String] { directories.map { $0.appendingPathComponent("cgroup.procs").path } }

    private func pids() -> [pid_t] {
        directories.flatMap { directory -> [pid_t] in
            let text = (try? String(contentsOf: directory.appendingPathComponent("cgroup.procs"), encoding: .utf8)) ?? ""
            return text.split(whereSeparator: \.isNewline).compactMap { pid_t($0) }
        }
    }

    /// Kills every process in the group, including ones forked while killing, and waits (up to
    /// a few seconds) until they are gone.
    func killAll() {
        // A throttled group would die slowly: dying takes CPU time too. Lift the quota first.
        for directory in directories {
            try? CgroupController.write("-1", to: directory.appendingPathComponent("cpu.cfs_quota_us"))
            try? CgroupController.write("max 100000", to: directory.appendingPathComponent("cpu.max"))
        }
        if case .v2 = version, let first = directories.first {
            try? CgroupController.write("1", to: first.appendingPathComponent("cgroup.kill"))
        }
        for _ in 0..<2500 {
            let remaining = pids()
            if remaining.isEmpty { return }
            for pid in remaining { kill(pid, SIGKILL) }
            usleep(2000)
        }
    }

    /// Whether the kernel's OOM killer killed something in the group.
    func oomKilled() -> Bool {
        for directory in directories {
            for file in ["memory.events", "memory.oom_control"] {
                guard let text = try? String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8) else { continue }
                for line in text.split(whereSeparator: \.isNewline) {
                    let parts = line.split(separator: " ")
                    if parts.count == 2, parts[0] == "oom_kill", let count = Int(parts[1]), count > 0 { return true }
                }
            }
        }
        return false
    }

    /// Removes the group once its processes are gone.
    func destroy() {
        killAll()
        for directory in directories.reversed() {
            for _ in 0..<500 {
                if rmdir(directory.path) == 0 || errno == ENOENT { break }
                usleep(2000)
            }
        }
    }

    // MARK: Metering

    /// CPU time its processes used so far, those that ended and groups below it included.
    func cpuSeconds(below child: String? = nil) -> Double? {
        guard var directory = accounting else { return nil }
        if let child { directory = directory.appendingPathComponent(child) }
        switch version {
        case .v1:
            return Self.number(in: directory.appendingPathComponent("cpuacct.usage")).map { Double($0) / 1e9 }
        case .v2:
            return Self.field("usage_usec", in: directory.appendingPathComponent("cpu.stat")).map { Double($0) / 1e6 }
        }
    }

    /// Memory it holds now (the page cache of files it wrote included, as the kernel counts it).
    func memoryBytes(below child: String? = nil) -> UInt64? {
        memoryFile(v1: "memory.usage_in_bytes", v2: "memory.current", below: child).flatMap(Self.number(in:))
    }

    /// The most memory it held at once, where the kernel keeps that (cgroup v2 before Linux
    /// 5.19 does not).
    func peakMemoryBytes(below child: String? = nil) -> UInt64? {
        memoryFile(v1: "memory.max_usage_in_bytes", v2: "memory.peak", below: child).flatMap(Self.number(in:))
    }

    /// A file of the memory group (or of the group `child` inside it), named per cgroup version.
    private func memoryFile(v1: String, v2: String, below child: String?) -> URL? {
        guard var directory = memory else { return nil }
        if let child { directory = directory.appendingPathComponent(child) }
        if case .v1 = version { return directory.appendingPathComponent(v1) }
        return directory.appendingPathComponent(v2)
    }

    /// The names of the groups inside this one's memory group (a container daemon's).
    func childGroups() -> [String] {
        guard let memory else { return [] }
        return Self.subdirectories(of: memory).map(\.lastPathComponent)
    }

    static func subdirectories(of url: URL) -> [URL] {
        ((try? FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: [.isDirectoryKey])) ?? [])
            .filter { (try? $0.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true }
    }

    static func number(in file: URL) -> UInt64? {
        (try? String(contentsOf: file, encoding: .utf8)).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    static func field(_ name: String, in file: URL) -> UInt64? {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return nil }
        for line in text.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == name { return UInt64(parts[1]) }
        }
        return nil
    }

    /// Moves a running process into the group (and `back` out of it later): a pooled WASM
    /// runner takes each execution's CPU limit and accounting this way. Only the CPU
    /// hierarchies: memory charged before the move would not follow it.
    func adopt(_ pid: pid_t) -> Bool {
        for directory in cpuGroups {
            guard (try? CgroupController.write("\(pid)", to: directory.appendingPathComponent("cgroup.procs"))) != nil else { return false }
        }
        return true
    }

    /// Moves `pid` back to the `cod` parents of this group's hierarchies (v1), or to `home`
    /// (v2, where a parent with child groups may hold no process).
    func release(_ pid: pid_t, home: String?) {
        switch version {
        case .v1:
            for directory in cpuGroups {
                try? CgroupController.write("\(pid)", to: directory.deletingLastPathComponent().appendingPathComponent("cgroup.procs"))
            }
        case .v2:
            if let home { try? CgroupController.write("\(pid)", to: root.appendingPathComponent(home).appendingPathComponent("cgroup.procs")) }
        }
    }

    /// Removes this group and every group a container daemon made inside it, in every
    /// hierarchy (daemons make theirs in hierarchies Cod does not use too), waiting up to
    /// `seconds` for their processes (the daemon's monitor ends a moment after the container).
    func destroyTree(seconds: Double = 10) {
        killAll()
        let fm = FileManager.default
        var tops: [URL] = []
        switch version {
        case .v2: tops = [root.appendingPathComponent("cod").appendingPathComponent(name)]
        case .v1:
            for hierarchy in (try? fm.contentsOfDirectory(atPath: root.path)) ?? [] {
                let url = root.appendingPathComponent(hierarchy).appendingPathComponent("cod").appendingPathComponent(name)
                if fm.fileExists(atPath: url.path) { tops.append(url) }
            }
        }
        let deadline = Date().addingTimeInterval(seconds)
        func remove(_ url: URL) -> Bool {
            var empty = true
            for child in Self.subdirectories(of: url) where !remove(child) { empty = false }
            return empty && (rmdir(url.path) == 0 || errno == ENOENT)
        }
        var remaining = tops
        while !remaining.isEmpty {
            remaining = remaining.filter { !remove($0) }
            if remaining.isEmpty || Date() > deadline { break }
            usleep(20_000)
        }
    }
}
