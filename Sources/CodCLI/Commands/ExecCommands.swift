import ArgumentParser
import ComputeNode
import Foundation
import JobSpec
import Models

/// The flags every run-a-program command shares: inputs, outputs, environment, resources,
/// network, timeout and partitions.
struct TaskOptions: ParsableArguments {
    @Option(
        name: [.short, .customLong("input")],
        help: "Input (repeatable): ipfs://CID[:/target] (default /inputs), src=ipfs://CID,dst=/target, or a local PATH[:TARGET] to upload.")
    var inputs: [String] = []
    @Option(name: [.short, .customLong("env")], help: "Environment variable KEY=VALUE (repeatable).") var env: [String] = []
    @Option(name: [.short, .customLong("output")], help: "Result folder NAME:PATH (repeatable; default outputs:/outputs).") var outputs: [String] = []
    @Option(help: "Memory limit, e.g. 512Mb.") var memory: String?
    @Option(help: "CPU request, e.g. 500m or 1.") var cpu: String?
    @Option(help: "Number of GPUs.") var gpu: String?
    @Option(help: "Network access: none (default), host, full.") var network: String?
    @Option(help: "Execution timeout in seconds.") var timeout: Int64?
    @Option(help: "Number of partitions to run.") var count = 1
    @Option(help: "The most the job may cost, in micro-credits (Budget.Max): what submitting holds when it is below the worst case.")
    var budget: Int64?
    @Option(name: .customLong("budget-per-partition"), help: "The most one partition may cost, in micro-credits (Budget.MaxPerPartition).")
    var budgetPerPartition: Int64?
    @Option(help: "Job name.") var name = ""
    @Option(help: "Wait for the job to finish (--wait=false returns at once).") var wait: Bool = true
    @Flag(name: .customLong("id-only"), help: "Print only the job ID.") var idOnly = false
    @Flag(name: .customLong("dry-run"), help: "Print the job spec instead of submitting it.") var dryRun = false
    @OptionGroup var verification: VerificationOptions

    /// Adds the inputs, outputs, environment, resources, network and timeout to `task`.
    func apply(to task: inout JobTask) throws {
        for input in inputs {
            if let ipfs = try InputFlag.ipfs(input) {
                task.inputSources.append(ipfs)
                continue
            }
            let (path, target) = InlineUpload.split(input, defaultTargetPrefix: "/inputs/")
            task.inputSources.append(InputSource(source: try InlineUpload.source(path: path), target: target))
        }
        for pair in env {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw ValidationError("--env expects KEY=VALUE, got \(pair)") }
            task.env[String(parts[0])] = String(parts[1])
        }
        for output in outputs.isEmpty ? ["outputs:/outputs"] : outputs {
            let parts = output.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { throw ValidationError("--output expects NAME:PATH, got \(output)") }
            task.resultPaths.append(ResultPath(name: String(parts[0]), path: String(parts[1])))
        }
        task.resources = ResourcesConfig(cpu: cpu ?? "", memory: memory ?? "", gpu: gpu ?? "")
        if let network { task.network = NetworkConfig(type: network.capitalized) }
        if let timeout { task.timeouts.executionTimeout = timeout }
    }

    /// Validates and submits the job (or prints it with --dry-run).
    func submit(_ task: JobTask, global: APIOptions) async throws {
        var job = Job(name: name, type: "batch", count: count, tasks: [task])
        try verification.apply(to: &job)
        if budget != nil || budgetPerPartition != nil { job.budget = Budget(max: budget, maxPerPartition: budgetPerPartition) }
        job = try JobSpecParser.prepare(job)
        if dryRun {
            print(try Output.json(job))
            return
        }
        try await JobFollower(client: global.client()).submitAndFollow(job, wait: wait, idOnly: idOnly)
    }
}

/// How a job's results are checked: `--verify verified --replicas 3 --quorum 2` (flags
/// override a job file's `Verification`).
struct VerificationOptions: ParsableArguments {
    @Option(name: .customLong("verify"), help: "fast (one execution per partition), verified (replicas on distinct nodes, a quorum of equal results) or trusted (only nodes with the --trust labels).")
    var mode: String?
    @Option(help: "Replicas started at once per partition (verified; default 2).") var replicas: Int?
    @Option(help: "Equal results needed to accept one (verified; default: --replicas).") var quorum: Int?
    @Option(name: .customLong("max-replicas"), help: "Most replicas per partition, failed ones included (verified; default replicas + 2).")
    var maxReplicas: Int?
    @Flag(help: "Adaptive replication (verified): a node with a long run of valid results may run a partition alone.")
    var adaptive = false
    @Option(name: .customLong("trust"), help: "With --verify trusted: a label KEY=VALUE every node that runs the job must carry (repeatable).")
    var trust: [String] = []
    @Option(name: .customLong("spot-check"), help: "Fast jobs: the fraction (0 < F <= 1) of partitions whose result is re-run later on another node and compared.")
    var spotCheck: Double?

    func apply(to job: inout Job) throws {
        guard mode != nil || replicas != nil || quorum != nil || maxReplicas != nil || adaptive || !trust.isEmpty || spotCheck != nil else { return }
        var settings = job.verification ?? Verification()
        if let spotCheck {
            guard spotCheck > 0, spotCheck <= 1 else { throw ValidationError("--spot-check is a fraction of partitions, 0 < F <= 1, got \(spotCheck)") }
            settings.spotCheck = spotCheck
        }
        if let mode {
            guard let parsed = Verification.Mode.allCases.first(where: { $0.rawValue.lowercased() == mode.lowercased() }) else {
                throw ValidationError("--verify must be fast, verified or trusted, got \(mode)")
            }
            settings.mode = parsed
        } else if job.verification == nil, spotCheck == nil || replicas != nil || quorum != nil || maxReplicas != nil || adaptive {
            settings.mode = .verified
        }
        if let replicas {
            settings.replicas = replicas
            if quorum == nil, job.verification == nil { settings.quorum = replicas }
            if maxReplicas == nil, job.verification == nil { settings.maxReplicas = replicas < Int.max - 2 ? replicas + 2 : Int.max }
        }
        if let quorum { settings.quorum = quorum }
        if let maxReplicas { settings.maxReplicas = maxReplicas }
        if adaptive { settings.adaptive = true }
        for label in trust {
            let parts = label.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--trust expects KEY=VALUE, got \(label)") }
            settings.trustLabels[String(parts[0])] = String(parts[1])
        }
        if !trust.isEmpty, mode == nil { settings.mode = .trusted }
        job.verification = settings
    }
}

/// `cod exec -- CMD ARGS...`: a host program in the process engine's sandbox.
struct ExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec", abstract: "Run a host program in a sandbox on a node (the process engine).",
        discussion: """
            The program runs under bubblewrap on a node that has it: the system read-only, inputs
            read-only at their targets, result folders writable, a private /tmp, no network
            unless asked for and allowed by the node.
            Example: cod exec -i ipfs://CID -- sed -n '/38.7[2-4]..,-9.1[3-7]../p' /inputs/log.txt
            """)

    @OptionGroup var task: TaskOptions
    @Option(name: [.short, .customLong("workdir")], help: "Working directory inside the sandbox.") var workdir: String?
    @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).") var command: [String] = []
    @OptionGroup var global: APIOptions

    func run() async throws {
        let words = command.first == "--" ? Array(command.dropFirst()) : command
        guard let program = words.first else { throw ValidationError("give the program to run after --, e.g. cod exec -- grep -c ERROR /inputs/log.txt") }
        var job = JobTask(name: "main")
        job.engine = ProcessEngineSpec(command: program, arguments: Array(words.dropFirst()), workingDirectory: workdir).specConfig
        try task.apply(to: &job)
        try await task.submit(job, global: global)
    }
}

/// `cod docker run IMAGE [CMD...]`: a container job, with Bacalhau's flags.
struct DockerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "docker", abstract: "Run containers through the Docker Engine API on a node.", subcommands: [Run.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a container image as a job.",
            discussion: "Example: cod docker run -i ipfs://CID ubuntu:24.04 -- grep -c ERROR /inputs/log.txt")

        @OptionGroup var task: TaskOptions
        @Option(help: "Replace the image's entrypoint (a command; repeat for its arguments).") var entrypoint: [String] = []
        @Option(name: [.short, .customLong("workdir")], help: "Working directory inside the container.") var workdir: String?
        @Argument(help: "The image, e.g. ubuntu:24.04.") var image: String
        @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).") var command: [String] = []
        @OptionGroup var global: APIOptions

        func run() async throws {
            let words = command.first == "--" ? Array(command.dropFirst()) : command
            var job = JobTask(name: "main")
            job.engine = DockerEngineSpec(image: image, entrypoint: entrypoint, parameters: words, workingDirectory: workdir).specConfig
            try task.apply(to: &job)
            try await task.submit(job, global: global)
        }
    }
}

/// `cod python run SCRIPT -r requirements.txt -i ipfs://CID`: a Python script over every input
/// file, with its requirements installed on the node.
struct PythonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "python", abstract: "Run Python scripts over every input file.", subcommands: [Run.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a script once per input file, with its requirements installed.",
            discussion: """
                The script is called as `python3 SCRIPT INPUT_FILE OUTPUT_DIR` for every file
                under /inputs (recursively, in name order; with --count N, partition i takes every
                N-th file from i). OUTPUT_DIR mirrors the input's folder under /outputs; all
                partitions' outputs make the job's one result CID.
                With the process engine (the default) the node builds a virtual environment from the
                requirements once and keeps it, keyed by the file's hash. With --engine docker the
                requirements are installed in the container on each run, which needs a node that
                allows --network full.
                Example: cod python run downscale.py -r requirements.txt -i ipfs://CID
                """)

        @OptionGroup var task: TaskOptions
        @Argument(help: "The Python script.") var script: String
        @Option(name: [.short, .customLong("requirements")], help: "A pip requirements file.") var requirements: String?
        @Option(help: "process (sandboxed, venv cached per node) or docker.") var engine = "process"
        @Option(help: "The image for --engine docker.") var image = "python:3.11-slim"
        @OptionGroup var global: APIOptions

        func run() async throws {
            guard FileManager.default.isReadableFile(atPath: script) else { throw ValidationError("cannot read the script \(script)") }
            var job = JobTask(name: "main")
            let scriptTarget = "/code/" + URL(fileURLWithPath: script).lastPathComponent
            job.inputSources.append(InputSource(source: try InlineUpload.source(path: script), target: scriptTarget))
            var requirementsTarget: String?
            if let requirements {
                guard FileManager.default.isReadableFile(atPath: requirements) else { throw ValidationError("cannot read \(requirements)") }
                requirementsTarget = "/code/requirements.txt"
                job.inputSources.append(InputSource(source: try InlineUpload.source(path: requirements), target: requirementsTarget!))
            }
            try task.apply(to: &job)
            switch engine.lowercased() {
            case "process":
                job.engine = ProcessEngineSpec(
                    command: "python3", arguments: ["-c", Self.driver, scriptTarget], pythonRequirements: requirementsTarget
                ).specConfig
            case "docker":
                var steps: [String] = []
                if let requirementsTarget {
                    steps.append("python3 -m pip install --disable-pip-version-check -q --target /tmp/cod-packages -r \(requirementsTarget)")
                }
                steps.append("PYTHONPATH=/tmp/cod-packages exec python3 -c \"$COD_DRIVER\" \(scriptTarget)")
                job.engine = DockerEngineSpec(
                    image: image, entrypoint: ["/bin/sh", "-c", steps.joined(separator: " && ")],
                    environmentVariables: ["COD_DRIVER": Self.driver]
                ).specConfig
            default:
                throw ValidationError("--engine must be process or docker")
            }
            try await task.submit(job, global: global)
        }

        /// Calls the script once per input file of this partition; fails if any call fails.
        static let driver = """
            import os, subprocess, sys
            script = sys.argv[1]
            index = int(os.environ.get("BACALHAU_PARTITION_INDEX", "0"))
            count = int(os.environ.get("BACALHAU_PARTITION_COUNT", "1"))
            files = []
            for top, dirs, names in os.walk("/inputs"):
                dirs.sort()
                files += [os.path.join(top, name) for name in sorted(names)]
            failed = 0
            for number, path in enumerate(files):
                if number % count != index:
                    continue
                out = os.path.join("/outputs", os.path.relpath(os.path.dirname(path), "/inputs"))
                os.makedirs(out, exist_ok=True)
                code = subprocess.call([sys.executable, script, path, os.path.normpath(out)])
                print(f"{path}: exit {code}", file=sys.stderr)
                failed += code != 0
            sys.exit(1 if failed else 0)
            """
    }
}
