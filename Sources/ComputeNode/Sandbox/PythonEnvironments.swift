import Crypto
import Foundation

/// Python virtual environments with a job's requirements installed, one per distinct
/// requirements file (by SHA-256) and kept on the node, so the second job with the same
/// requirements starts at once. Built outside the sandbox, with the node's own network and pip
/// configuration; the sandbox then sees the environment read-only.
actor PythonEnvironments {
    let root: URL
    private var building: [String: Task<Result<URL, Failure>, Never>] = [:]

    struct Failure: Error {
        let message: String
    }

    init(root: URL) {
        self.root = root
    }

    /// The environment for `requirements`, building it on first use.
    func environment(requirements: URL) async -> Result<URL, Failure> {
        guard let contents = try? Data(contentsOf: requirements) else {
            return .failure(Failure(message: "the requirements file \(requirements.lastPathComponent) cannot be read"))
        }
        let key = SHA256.hash(data: contents).prefix(16).map { String(format: "%02x", $0) }.joined()
        let directory = root.appendingPathComponent(key)
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent(".cod-ready").path) { return .success(directory) }
        if let task = building[key] { return await task.value }
        // Building runs pip for as long as it takes: on a thread of its own, never on one of
        // the few threads that run the node's tasks.
        let task = Task {
            await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume(returning: Self.build(at: directory, requirements: contents)) }
            }
        }
        building[key] = task
        let result = await task.value
        building[key] = nil
        return result
    }

    /// Creates the venv at its final path (venvs are not relocatable) and installs into it; a
    /// failed build leaves nothing behind.
    private static func build(at directory: URL, requirements: Data) -> Result<URL, Failure> {
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
        if case .failure(let failure) = runLogged([python, "-m", "venv", directory.path], log: log) {
            try? fm.removeItem(at: directory)
            return .failure(Failure(message: "creating the Python environment failed (is python3-venv installed?): \(failure.message)"))
        }
        let file = directory.appendingPathComponent("requirements.txt")
        do {
            try requirements.write(to: file)
        } catch {
            try? fm.removeItem(at: directory)
            return .failure(Failure(message: "cannot write the requirements: \(error)"))
        }
        let pip = directory.appendingPathComponent("bin/pip").path
        if case .failure(let failure) = runLogged(
            [pip, "install", "--disable-pip-version-check", "--no-input", "-q", "-r", file.path], log: log)
        {
            try? fm.removeItem(at: directory)
            return .failure(Failure(message: "installing the requirements failed: \(failure.message)"))
        }
        fm.createFile(atPath: directory.appendingPathComponent(".cod-ready").path, contents: nil)
        return .success(directory)
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
