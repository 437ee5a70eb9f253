import APIClient
import Archives
import ArgumentParser
import ComputeNode
import ContentAddressing
import Foundation
import JobSpec
import Models
import WasmRunner

struct WasmCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wasm", abstract: "Run WebAssembly (WASI) modules.", subcommands: [Run.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upload a local .wasm module and run it as a job.",
            discussion: "Example: cod wasm run hello.wasm arg1 -e NAME=world -o outputs:/outputs")

        @Argument(help: "The module (.wasm file) to run.") var module: String
        @Argument(help: "Arguments passed to the module (put them after -- when they start with a dash).") var arguments: [String] = []
        @OptionGroup var task: TaskOptions
        @Option(name: [.customShort("I"), .customLong("import-module")], help: "Module to link first (repeatable).") var importModules: [String] = []
        @Option(name: .customLong("entry-point"), help: "Function to call.") var entryPoint = "_start"
        @Option(help: "Instruction budget (fuel): the module fails after this many WebAssembly operators.") var fuel: UInt64?
        @OptionGroup var global: APIOptions

        func run() async throws {
            var job = JobTask(name: "main")
            let entryTarget = "/wasm/" + URL(fileURLWithPath: module).lastPathComponent
            job.inputSources.append(InputSource(source: try InlineUpload.source(path: module), target: entryTarget))
            var importTargets: [String] = []
            for path in importModules {
                let target = "/wasm/imports/" + URL(fileURLWithPath: path).lastPathComponent
                job.inputSources.append(InputSource(source: try InlineUpload.source(path: path), target: target))
                importTargets.append(target)
            }
            var engine = WasmEngineSpec(entryModule: entryTarget, entrypoint: entryPoint, parameters: arguments, importModules: importTargets)
            engine.fuel = fuel
            job.engine = engine.specConfig
            try task.apply(to: &job)
            try await task.submit(job, global: global)
        }
    }
}

/// Turns local files and folders into `inline` inputs, the way Bacalhau's CLI uploads them:
/// small files as plain data URLs, larger files and folders as gzip tarballs.
enum InlineUpload {
    static let plainLimit = 512

    static func source(path: String) throws -> SpecConfig {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw CLIFailure("cannot read \(path): no such file or folder")
        }
        if !isDirectory.boolValue {
            let data = try Data(contentsOf: url)
            if data.count <= plainLimit {
                return SpecConfig(type: "inline", params: ["URL": .string(DataURL.encode(Array(data), mediaType: "application/octet-stream"))])
            }
            // One file in a tarball: the executor puts it back at the target as that file.
            let staging = FileManager.default.temporaryDirectory.appendingPathComponent("cod-upload-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: staging) }
            try FileManager.default.copyItem(at: url, to: staging.appendingPathComponent(url.lastPathComponent))
            return SpecConfig(type: "inline", params: ["URL": .string(DataURL.encode(try Gzip.compress(try Tar.archive(directory: staging)), mediaType: "application/gzip"))])
        }
        return SpecConfig(type: "inline", params: ["URL": .string(DataURL.encode(try Gzip.compress(try Tar.archive(directory: url)), mediaType: "application/gzip"))])
    }

    /// `data.csv:/inputs/data.csv` -> (path, target); a bare path goes under the prefix.
    static func split(_ argument: String, defaultTargetPrefix: String) -> (String, String) {
        if let colon = argument.lastIndex(of: ":"), argument[argument.index(after: colon)...].hasPrefix("/") {
            return (String(argument[..<colon]), String(argument[argument.index(after: colon)...]))
        }
        return (argument, defaultTargetPrefix + URL(fileURLWithPath: argument).lastPathComponent)
    }
}

/// `cod wasm-runner SPEC`: runs WASM executions for a compute node, in their own process.
///
/// With `-`, it serves one execution per line of standard input (a `WasmRunSpec` as JSON)
/// and answers each with `done ` and the `WasmOutcome` as JSON. With a file, it runs that one
/// spec and prints the outcome.
struct WasmRunnerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wasm-runner", abstract: "Run WASM executions (used by compute nodes).", shouldDisplay: false)

    @Argument(help: "An execution spec file, or - to read specs from standard input.") var spec: String

    /// A runner retires after this many executions, so no state builds up over a node's life.
    static let executionsPerProcess = 500

    func run() throws {
        WasmRunner.dieWithParent(expectedParent: getppid())
        guard spec == "-" else {
            let outcome = WasmRunner.run(try JSONDecoder().decode(WasmRunSpec.self, from: Data(contentsOf: URL(fileURLWithPath: spec))))
            print(String(decoding: try JSONEncoder().encode(outcome), as: UTF8.self))
            return
        }
        for _ in 0..<Self.executionsPerProcess {
            guard let line = readLine(strippingNewline: true), !line.isEmpty else { return }
            let outcome: WasmOutcome
            do {
                outcome = WasmRunner.run(try JSONDecoder().decode(WasmRunSpec.self, from: Data(line.utf8)))
            } catch {
                outcome = WasmOutcome(kind: .invalid, exitCode: -1, message: "unreadable execution spec: \(error)")
            }
            let answer = "done " + String(decoding: try JSONEncoder().encode(outcome), as: UTF8.self) + "\n"
            FileHandle.standardOutput.write(Data(answer.utf8))
        }
    }
}

/// Parses `-i` values that name content by CID.
enum InputFlag {
    /// `ipfs://CID[:/target]` or `src=ipfs://CID,dst=/target`; nil for anything else.
    static func ipfs(_ value: String) throws -> InputSource? {
        var source = value
        var target = "/inputs"
        if value.hasPrefix("src=") {
            for part in value.split(separator: ",") {
                if part.hasPrefix("src=") { source = String(part.dropFirst(4)) }
                if part.hasPrefix("dst=") { target = String(part.dropFirst(4)) }
            }
        }
        guard source.hasPrefix("ipfs://") else { return nil }
        var cid = String(source.dropFirst("ipfs://".count))
        if let colon = cid.firstIndex(of: ":") {
            target = String(cid[cid.index(after: colon)...])
            cid = String(cid[..<colon])
        }
        guard (try? CID(cid)) != nil else { throw ValidationError("-i \(value): \"\(cid)\" is not a CID") }
        guard target.hasPrefix("/") else { throw ValidationError("-i \(value): the target must be an absolute path") }
        return InputSource(source: SpecConfig(type: "ipfs", params: ["CID": .string(cid)]), target: target)
    }
}
