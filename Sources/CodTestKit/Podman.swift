import Foundation

/// podman's Docker-compatible API service on a private socket, started once for the test run,
/// with a busybox image built locally (no registry is reachable).
actor PodmanService {
    static let shared = PodmanService()
    static let image = "localhost/cod-test/busybox:latest"
    private var starting: Task<String, any Error>?

    /// `unix:///…/podman.sock`, with the test image present. Concurrent callers share one
    /// service.
    func dockerHost() async throws -> String {
        if let starting { return try await starting.value }
        let task = Task { try await self.start() }
        starting = task
        do {
            return try await task.value
        } catch {
            starting = nil
            throw error
        }
    }

    private func start() async throws -> String {
        if let given = ProcessInfo.processInfo.environment["COD_TEST_DOCKER_HOST"], !given.isEmpty {
            try await ensureImage()
            return given
        }
        guard let podman = Self.which("podman") else {
            throw TestFailure("podman is not installed; scripts/install-test-deps.sh installs it")
        }
        let directory = try Paths.temporaryDirectory("cod-podman")
        let socket = directory.appendingPathComponent("podman.sock")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: podman)
        process.arguments = Self.globalFlags + ["system", "service", "--time=0", "unix://\(socket.path)"]
        // conmon leaves files (an `oom` marker) in the service's working folder.
        process.currentDirectoryURL = directory
        process.standardOutput = FileHandle.nullDevice
        let log = directory.appendingPathComponent("podman.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        Registry.shared.add(process)
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: socket.path) {
            guard Date() < deadline, process.isRunning else {
                throw TestFailure("podman system service did not start:\n\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await ensureImage()
        return "unix://\(socket.path)"
    }

    static let globalFlags = ["--runtime", "runc", "--cgroup-manager", "cgroupfs"]

    /// Runs the podman CLI (same storage as the service).
    static func podman(_ arguments: [String]) async throws -> CommandResult {
        guard let podman = which("podman") else { throw TestFailure("podman is not installed") }
        return try await Run.async([podman] + globalFlags + arguments)
    }

    /// Imports a root filesystem holding a static busybox and its applets, once.
    private func ensureImage() async throws {
        if try await Self.podman(["image", "exists", Self.image]).status == 0 { return }
        let busybox = "/bin/busybox"
        guard FileManager.default.isExecutableFile(atPath: busybox) else { throw TestFailure("busybox-static is not installed") }
        let root = try Paths.temporaryDirectory("cod-busybox-root")
        let fm = FileManager.default
        for folder in ["bin", "tmp", "etc", "root"] {
            try fm.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try fm.copyItem(atPath: busybox, toPath: root.appendingPathComponent("bin/busybox").path)
        let list = try await Run.async([busybox, "--list"])
        for applet in list.stdout.split(separator: "\n") where applet != "busybox" {
            try? fm.createSymbolicLink(atPath: root.appendingPathComponent("bin/\(applet)").path, withDestinationPath: "busybox")
        }
        try Data("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n".utf8)
            .write(to: root.appendingPathComponent("etc/passwd"))
        let tarball = root.deletingLastPathComponent().appendingPathComponent("\(root.lastPathComponent).tar")
        let tar = try await Run.async(["/bin/tar", "-C", root.path, "-cf", tarball.path, "."])
        guard tar.status == 0 else { throw TestFailure("tar failed: \(tar.stderr)") }
        let imported = try await Self.podman(["import", "--change", "ENV PATH=/bin", tarball.path, Self.image])
        guard imported.status == 0 else { throw TestFailure("podman import failed: \(imported.stderr)") }
    }

    static let pythonImage = "localhost/cod-test/python:3.11"

    /// An image with busybox and the host's Python 3.11 (interpreter, standard library and the
    /// shared libraries they load), built once.
    func pythonImage() async throws -> String {
        _ = try await dockerHost()
        if try await Self.podman(["image", "exists", Self.pythonImage]).status == 0 { return Self.pythonImage }
        let root = try Paths.temporaryDirectory("cod-python-root")
        let tarball = root.deletingLastPathComponent().appendingPathComponent("\(root.lastPathComponent).tar")
        let script = #"""
            set -e
            root="$1"; tarball="$2"
            mkdir -p "$root/bin" "$root/usr/bin" "$root/usr/lib" "$root/tmp" "$root/lib64" "$root/lib/x86_64-linux-gnu"
            cp /bin/busybox "$root/bin/busybox"
            for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"; done
            cp /usr/bin/python3.11 "$root/usr/bin/python3.11"
            ln -s python3.11 "$root/usr/bin/python3"
            tar -C /usr/lib --exclude=python3.11/test --exclude='__pycache__' -cf - python3.11 | tar -C "$root/usr/lib" -xf -
            for lib in $( (ldd /usr/bin/python3.11; ldd /usr/lib/python3.11/lib-dynload/*.so) 2>/dev/null | awk '/=>/ { print $3 }' | sort -u); do
                cp -L "$lib" "$root/lib/x86_64-linux-gnu/"
            done
            cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
            tar -C "$root" -cf "$tarball" .
            """#
        let built = try await Run.async(["/bin/sh", "-c", script, "build-python-image", root.path, tarball.path])
        guard built.status == 0 else { throw TestFailure("building the python image failed: \(built.stderr)") }
        let imported = try await Self.podman(["import", "--change", "ENV PATH=/usr/bin:/bin", tarball.path, Self.pythonImage])
        guard imported.status == 0 else { throw TestFailure("podman import failed: \(imported.stderr)") }
        try? FileManager.default.removeItem(at: tarball)
        try? FileManager.default.removeItem(at: root)
        return Self.pythonImage
    }

    static func which(_ name: String) -> String? {
        ["/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin"].map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
