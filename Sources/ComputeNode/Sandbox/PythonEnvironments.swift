import Crypto
import Foundation
import Wire

/// Python virtual environments with a job's requirements installed, one per distinct
/// requirements file (by SHA-256) and kept on the node, so the second job with the same
/// requirements starts at once.
///
/// The requirements file is the job's, so it is hostile input. It may list packages only
/// (`name[extras] <op> version ; marker`): pip options (`-r`, `-e`, `--index-url`, ...), URLs
/// and paths are refused with the line's number, never its contents. pip then runs inside a
/// bubblewrap sandbox like a job's own: it sees the system folders read-only, the
/// requirements file and the environment being built, no host configuration (pip's config and
/// environment are cleared), and the network only when the operator configured an index
/// (`--python-index-url`), which is the only index it is given. It installs wheels only, so no
/// package's code runs while the environment is built. The sandbox then sees the environment
/// read-only.
actor PythonEnvironments {
    let root: URL
    let bwrap: String
    /// The operator's package index; nil installs nothing from the network.
    let indexURL: String?
    private var building: [String: Task<Result<URL, Failure>, Never>] = [:]

    struct Failure: Error {
        let message: String
    }

    /// The largest requirements file read.
    static let maxRequirementsBytes = 64 << 10

    init(root: URL, bwrap: String, indexURL: String?) {
        self.root = root
        self.bwrap = bwrap
        self.indexURL = indexURL
    }

    /// The environment for `requirements`, building it on first use.
    func environment(requirements: URL) async -> Result<URL, Failure> {
        let contents: Data
        switch Self.readRequirements(requirements) {
        case .success(let data): contents = data
        case .failure(let failure): return .failure(failure)
        }
        let packages: [String]
        switch Self.packages(in: contents) {
        case .success(let list): packages = list
        case .failure(let failure): return .failure(failure)
        }
        let key = SHA256.hash(data: contents).prefix(16).hexString
        let directory = root.appendingPathComponent(key)
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent(".cod-ready").path) { return .success(directory) }
        if let task = building[key] { return await task.value }
        // Building runs pip for as long as it takes: on a thread of its own, never on one of
        // the few threads that run the node's tasks.
        let bwrap = self.bwrap
        let indexURL = self.indexURL
        let task = Task {
            await withCheckedContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(returning: Self.build(at: directory, packages: packages, bwrap: bwrap, indexURL: indexURL))
                }
            }
        }
        building[key] = task
        let result = await task.value
        building[key] = nil
        return result
    }

    /// Reads the job's requirements file from its input folder: a regular file (not a link,
    /// which could point anywhere on the host), of bounded size.
    static func readRequirements(_ url: URL) -> Result<Data, Failure> {
        let fd = open(url.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            return .failure(Failure(message: "the requirements file \(url.lastPathComponent) cannot be read (it must be a regular file in the job's inputs)"))
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            return .failure(Failure(message: "the requirements file \(url.lastPathComponent) is not a regular file"))
        }
        guard let data = try? handle.read(upToCount: maxRequirementsBytes + 1), data.count <= maxRequirementsBytes else {
            return .failure(Failure(message: "the requirements file is larger than \(maxRequirementsBytes / 1024) KiB"))
        }
        return .success(data)
    }

    /// The package specifiers a requirements file lists; anything else is refused by line number.
    static func packages(in contents: Data) -> Result<[String], Failure> {
        var packages: [String] = []
        let text = String(decoding: contents, as: UTF8.self)
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(rawLine)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let spec = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if spec.isEmpty { continue }
            guard isPackageSpecifier(spec) else {
                return .failure(Failure(message:
                    "requirements line \(index + 1) is not a package specifier: list packages as name, name==1.2 or name[extra]>=1.0; pip options (-r, -e, --index-url, ...), URLs and paths are not allowed (the node's operator chooses the package index)"))
            }
            packages.append(spec)
        }
        return .success(packages)
    }

    /// PEP 508 name, optional extras, version clauses and an environment marker; no URLs,
    /// paths or options.
    static func isPackageSpecifier(_ spec: String) -> Bool {
        let pattern = #"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(\[[A-Za-z0-9._, -]*\])?\s*((===?|~=|!=|<=?|>=?)\s*[A-Za-z0-9.*+!_-]+\s*(,\s*(===?|~=|!=|<=?|>=?)\s*[A-Za-z0-9.*+!_-]+\s*)*)?(;[A-Za-z0-9_ .<>=!~'"()-]*)?$"#
        return spec.range(of: pattern, options: .regularExpression) != nil && !spec.contains("://") && !spec.contains("@")
    }

    /// Creates the venv at its final path (venvs are not relocatable) and installs into it
    /// inside a sandbox; a failed build leaves nothing behind.
    private static func build(at directory: URL, packages: [String], bwrap: String, indexURL: String?) -> Result<URL, Failure> {
        let fm = FileManager.default
        try? fm.removeItem(at: directory)
        do {
            try fm.createDirectory(at: directory.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            return .failure(Failure(message: "cannot create the Python environment folder: \(error)"))
        }
        // The system's Python: the sandbox sees /usr, not a user's own installations.
        let system = "/usr/bin/python3"
        guard let python = FileManager.default.isExecutableFile(atPath: system) ? system : SandboxExecutor.findExecutable("python3") else {
            return .failure(Failure(message: "python3 is not installed on this node"))
        }
        let log = directory.deletingLastPathComponent().appendingPathComponent("\(directory.lastPathComponent).log")
        // Creating a venv runs no job input: only the system's own interpreter and path.
        if case .failure(let failure) = runLogged([python, "-m", "venv", directory.path], log: log) {
            try? fm.removeItem(at: directory)
            return .failure(Failure(message: "creating the Python environment failed (is python3-venv installed?): \(failure.message)"))
        }
        if !packages.isEmpty {
            let file = directory.deletingLastPathComponent().appendingPathComponent("\(directory.lastPathComponent).requirements")
            defer { try? fm.removeItem(at: file) }
            do {
                try Data((packages.joined(separator: "\n") + "\n").utf8).write(to: file)
            } catch {
                try? fm.removeItem(at: directory)
                return .failure(Failure(message: "cannot write the requirements: \(error)"))
            }
            let command = installCommand(bwrap: bwrap, venv: directory, requirements: file, indexURL: indexURL)
            if case .failure = runLogged(command, log: log) {
                try? fm.removeItem(at: directory)
                let source = indexURL.map { "from the node's package index \($0)" } ?? "(this node has no package index: its operator can set one with --python-index-url)"
                return .failure(Failure(message: "installing the requirements failed \(source); only wheels are installed"))
            }
        }
        fm.createFile(atPath: directory.appendingPathComponent(".cod-ready").path, contents: nil)
        return .success(directory)
    }

    /// pip inside bwrap: new namespaces, the network only with an operator's index, the
    /// environment writable, the (cleaned) requirements read-only, nothing else of the host.
    static func installCommand(bwrap: String, venv: URL, requirements: URL, indexURL: String?) -> [String] {
        var arguments = [bwrap] + SandboxExecutor.isolation(network: indexURL != nil)
        arguments += ["--bind", venv.path, venv.path, "--ro-bind", requirements.path, "/tmp/requirements.txt", "--remount-ro", "/"]
        arguments += [
            "--clearenv", "--setenv", "PATH", venv.appendingPathComponent("bin").path + ":/usr/bin:/bin",
            "--setenv", "HOME", "/tmp", "--setenv", "PIP_CONFIG_FILE", "/dev/null", "--setenv", "PIP_NO_CACHE_DIR", "1",
            "--setenv", "LANG", "C.UTF-8", "--chdir", "/tmp", "--",
            venv.appendingPathComponent("bin/pip").path, "install", "--isolated", "--disable-pip-version-check", "--no-input", "-q",
            "--only-binary", ":all:",
        ]
        if let indexURL { arguments += ["--index-url", indexURL] } else { arguments += ["--no-index"] }
        arguments += ["-r", "/tmp/requirements.txt"]
        return arguments
    }

    /// Runs a command with its output in `log`; fails with the output's last lines.
    private static func runLogged(_ command: [String], log: URL) -> Result<Void, Failure> {
        FileManager.default.createFile(atPath: log.path, contents: nil)
        guard let handle = try? FileHandle(forWritingTo: log) else { return .failure(Failure(message: "cannot write \(log.path)")) }
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
        } catch {
            return .failure(Failure(message: "\(command[0]) cannot be started: \(error)"))
        }
        guard process.terminationStatus == 0 else {
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            let tail = output.split(whereSeparator: \.isNewline).suffix(5).joined(separator: "\n")
            return .failure(Failure(message: tail.isEmpty ? "exit status \(process.terminationStatus)" : tail))
        }
        return .success(())
    }
}
