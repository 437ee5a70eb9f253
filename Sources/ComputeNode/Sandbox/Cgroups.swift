import Foundation
import Models

/// Makes one cgroup per sandboxed execution, under cgroup v2 (unified) or v1 (the `pids`,
/// `memory` and `cpu` hierarchies), to bound its processes, memory and CPU and to find and
/// kill every process it started.
struct CgroupController: Sendable, CustomStringConvertible {
    enum Version: Sendable {
        case v1(pids: URL, memory: URL?, cpu: URL?)
        case v2(URL)
    }

    let version: Version

    var description: String {
        switch version {
        case .v1: return "cgroup v1"
        case .v2: return "cgroup v2"
        }
    }

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
                return CgroupController(version: .v2(parent))
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
        return CgroupController(version: .v1(pids: pidsParent, memory: parent("memory"), cpu: parent("cpu")))
    }

    static func write(_ text: String, to url: URL) throws {
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.write(contentsOf: Data(text.utf8))
    }

    /// A new group with the execution's limits.
    func create(name: String, resources: Resources, maxProcesses: Int) throws -> Cgroup {
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
                try Self.write("\(maxProcesses)", to: group.appendingPathComponent("pids.max"))
                if resources.memory > 0 {
                    try Self.write("\(resources.memory)", to: group.appendingPathComponent("memory.max"))
                    try? Self.write("0", to: group.appendingPathComponent("memory.swap.max"))
                }
                if resources.cpu > 0 {
                    try? Self.write("\(max(Int(resources.cpu * 100_000), 1000)) 100000", to: group.appendingPathComponent("cpu.max"))
                }
                return Cgroup(directories: directories, version: version)
            case .v1(let pidsParent, let memoryParent, let cpuParent):
                let pids = try make(pidsParent)
                try Self.write("\(maxProcesses)", to: pids.appendingPathComponent("pids.max"))
                if let memoryParent {
                    let memory = try make(memoryParent)
                    if resources.memory > 0 {
                        try Self.write("\(resources.memory)", to: memory.appendingPathComponent("memory.limit_in_bytes"))
                        try? Self.write("\(resources.memory)", to: memory.appendingPathComponent("memory.memsw.limit_in_bytes"))
                    }
                }
                // A CPU group even without a quota: the scheduler then weighs the whole sandbox as
                // one, so however many processes it starts, the node keeps its share.
                if let cpuParent {
                    let cpu = try make(cpuParent)
                    if resources.cpu > 0 {
                        try? Self.write("100000", to: cpu.appendingPathComponent("cpu.cfs_period_us"))
                        try? Self.write("\(max(Int(resources.cpu * 100_000), 1000))", to: cpu.appendingPathComponent("cpu.cfs_quota_us"))
                    }
                }
                return Cgroup(directories: directories, version: version)
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
}
