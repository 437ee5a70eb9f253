import Foundation
import JobSpec
import Models
import Testing

@Suite("Job specs: parsing, normalisation and validation")
struct JobSpecTests {
    /// Bacalhau's documented batch example, unchanged.
    static let bacalhauExample = """
        Name: Batch Job Example
        Type: batch
        Namespace: default
        Priority: 100
        Count: 2
        Meta:
          Job purpose: Provide detailed example of the batch job
        Labels:
          Some option: Some text
        Constraints:
          - Key: "Operating-System"
            Operator: "="
            Values: ["linux"]
        Tasks:
          - Name: Important Calculations
            Engine:
              Type: docker
              Params:
                Image: alek5eyk/batchjobexample:1.1
                Entrypoint: null
                Parameters: [python, supercalc.py, "5", /outputs/result.txt]
                WorkingDirectory: ""
                EnvironmentVariables:
                  - DEFAULT_USER_NAME=root
            Publisher:
              Type: ipfs
            InputSources:
              - Target: /data
                Source:
                  Type: ipfs
                  Params:
                    CID: "QmSYE8dVx6RTdDFFhBu51JjFG1fwwPdUJoXZ4ZNXvfoK2V"
            ResultPaths:
              - Name: outputs
                Path: /outputs
            Resources:
              CPU: 250m
              Memory: 1Gb
              Disk: 100mb
              GPU: "0"
            Network:
              Type: HTTP
              Domains: [example.com, ghcr.io]
            Timeouts:
              QueueTimeout: 101
              TotalTimeout: 301
        """

    @Test func parsesBacalhauExampleUnchanged() throws {
        let job = try JobSpecParser.parse(Self.bacalhauExample)
        #expect(job.name == "Batch Job Example")
        #expect(job.count == 2)
        #expect(job.priority == 100)
        #expect(job.constraints == [LabelSelectorRequirement(key: "Operating-System", operator: "=", values: ["linux"])])
        let task = job.task
        #expect(task.engine.type == "docker")
        // A quoted "5" stays a string.
        #expect(task.engine.params["Parameters"]?.stringArray == ["python", "supercalc.py", "5", "/outputs/result.txt"])
        #expect(task.inputSources.first?.source.params["CID"]?.stringValue == "QmSYE8dVx6RTdDFFhBu51JjFG1fwwPdUJoXZ4ZNXvfoK2V")
        #expect(task.resources.memory == "1Gb")
        #expect(task.timeouts.totalTimeout == 301)
        #expect(task.network.domains == ["example.com", "ghcr.io"])
        // An unset ExecutionTimeout defaults to 1800 s, but never to more than TotalTimeout
        // leaves after queueing, so a spec that sets only TotalTimeout is valid.
        let normalized = JobNormalizer().normalize(job)
        #expect(normalized.task.timeouts.executionTimeout == 301 - normalized.task.timeouts.queueTimeout)
        let problems = JobValidator().validate(normalized)
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test func reportsEveryProblemWithItsPath() throws {
        let yaml = """
            Type: batch
            Count: -2
            Constraints:
              - Key: region
                Operator: near
            Tasks:
              - Name: main
                Engine:
                  Type: wasm
                  Params:
                    EntryModule: /app/missing.wasm
                    Parameters: oops
                Env:
                  BACALHAU_SECRET: x
                  "1BAD": y
                InputSources:
                  - Target: /data
                    Source: {Type: inline, Params: {URL: "not-a-data-url"}}
                  - Target: /data
                    Source: {Type: carrier-pigeon}
                ResultPaths:
                  - Name: out/put
                    Path: outputs/../../etc
                Resources:
                  CPU: lots
                  Memory: 12 parsecs
                Timeouts:
                  ExecutionTimeout: 50
                  QueueTimeout: 50
                  TotalTimeout: 60
            """
        let job = JobNormalizer().normalize(try JobSpecParser.parse(yaml))
        let problems = JobValidator().validate(job)
        let paths = Set(problems.map(\.path))
        let expected: Set<String> = [
            "Count", "Constraints[0].Operator", "Tasks[0].Engine.Params.Parameters",
            "Tasks[0].Env.BACALHAU_SECRET", "Tasks[0].Env.1BAD", "Tasks[0].InputSources[0].Source.Params.URL",
            "Tasks[0].InputSources[1].Target", "Tasks[0].InputSources[1].Source.Type", "Tasks[0].ResultPaths[0].Name",
            "Tasks[0].ResultPaths[0].Path", "Tasks[0].Resources.CPU", "Tasks[0].Resources.Memory", "Tasks[0].Timeouts",
        ]
        #expect(expected.isSubset(of: paths), "missing: \(expected.subtracting(paths)); got \(problems)")
        // The whole list reaches the user in one error.
        #expect(throws: CodError.self) { try JobSpecParser.prepare(job) }
        do {
            _ = try JobSpecParser.prepare(job)
        } catch let error as CodError {
            #expect(error.code == .invalidJob)
            #expect(error.message.contains("Tasks[0].Resources.Memory"))
            #expect(error.message.contains("problems"))
        }
    }

    @Test func wasmModuleMustBeAnInput() throws {
        var task = JobTask(name: "main")
        task.engine = WasmEngineSpec(entryModule: "/app/main.wasm", importModules: ["/lib/x.wasm"]).specConfig
        let problems = JobValidator().validate(JobNormalizer().normalize(Job(tasks: [task])))
        #expect(problems.map(\.path).contains("Tasks[0].Engine.Params.EntryModule"))
        #expect(problems.map(\.path).contains("Tasks[0].Engine.Params.ImportModules"))
    }

    @Test func dockerAndProcessEngineParamsAreChecked() throws {
        func problems(_ engine: SpecConfig) -> [String] {
            var task = JobTask(name: "main")
            task.engine = engine
            return JobValidator().validate(JobNormalizer().normalize(Job(tasks: [task]))).map { "\($0.path): \($0.message)" }
        }
        #expect(problems(SpecConfig(type: "docker")).contains { $0.hasPrefix("Tasks[0].Engine.Params.Image: required") })
        let bad = problems(SpecConfig(type: "docker", params: [
            "Image": .string("ubuntu"), "Entrypoint": .int(3), "WorkingDirectory": .string("relative"),
            "EnvironmentVariables": .array([.string("NOVALUE")]),
        ]))
        #expect(bad.contains { $0.hasPrefix("Tasks[0].Engine.Params.Entrypoint: expected a list of strings") }, "\(bad)")
        #expect(bad.contains { $0.hasPrefix("Tasks[0].Engine.Params.WorkingDirectory: must be an absolute path") })
        #expect(bad.contains { $0.contains("entry \"NOVALUE\" is not KEY=VALUE") })
        let docker = DockerEngineSpec(image: "busybox", entrypoint: ["/bin/sh", "-c"], parameters: ["echo hi"], environmentVariables: ["A": "1"])
        var parsed: [ValidationProblem] = []
        #expect(DockerEngineSpec.parse(docker.specConfig, path: "P", problems: &parsed) == docker)
        #expect(parsed.isEmpty)

        #expect(problems(SpecConfig(type: "process")).contains { $0.hasPrefix("Tasks[0].Engine.Params.Command: required") })
        #expect(problems(SpecConfig(type: "process", params: ["Command": .string("bin/sed")])).contains { $0.contains("a program name or an absolute path") })
        let process = ProcessEngineSpec(command: "sed", arguments: ["-n", "p"], workingDirectory: "/inputs", pythonRequirements: "/code/r.txt")
        #expect(ProcessEngineSpec.parse(process.specConfig, path: "P", problems: &parsed) == process)
        // The requirements file must be one of the inputs.
        #expect(problems(process.specConfig).contains { $0.hasPrefix("Tasks[0].Engine.Params.PythonRequirements") })
        // WASM fuel must be a positive whole number.
        var wasm = WasmEngineSpec(entryModule: "/app/m.wasm").specConfig
        wasm.params["Fuel"] = .int(-5)
        #expect(problems(wasm).contains { $0.hasPrefix("Tasks[0].Engine.Params.Fuel") })
    }

    @Test func nvidiaSMIOutputIsParsed() {
        let gpus = GPUInfo.parseNvidiaSMI("""
            0, NVIDIA H100 80GB HBM3, 81559, 00000000:19:00.0
            1, NVIDIA H100 80GB HBM3, 81559, 00000000:3B:00.0
            garbage line
            """)
        #expect(gpus.count == 2)
        #expect(gpus[1] == GPUInfo(index: 1, name: "NVIDIA H100 80GB HBM3", vendor: "NVIDIA", memory: 81559, pciAddress: "00000000:3B:00.0"))
        #expect(GPUInfo.parseNvidiaSMI("").isEmpty)
    }

    @Test func legacyWasmSpecIsRewritten() throws {
        let json = """
            {"Type":"batch","Tasks":[{"Name":"main","Engine":{"Type":"wasm","Params":{
              "EntryModule":{"Source":{"Type":"inline","Params":{"URL":"data:,abc"}}},
              "EntryPoint":"run",
              "ImportModules":[{"Source":{"Type":"inline","Params":{"URL":"data:,def"}}}]}}}]}
            """
        let job = try JobSpecParser.prepare(try JobSpecParser.parse(json))
        let spec = try #require(WasmEngineSpec.parse(job.task.engine, path: "", problems: &Self.ignored))
        #expect(spec.entryModule == "/wasm/entry.wasm")
        #expect(spec.entrypoint == "run")
        #expect(spec.importModules == ["/wasm/imports/module_0.wasm"])
        #expect(job.task.inputSources.map(\.target) == ["/wasm/entry.wasm", "/wasm/imports/module_0.wasm"])
    }
    nonisolated(unsafe) static var ignored: [ValidationProblem] = []

    @Test(arguments: ["daemon", "service"])
    func longRunningJobsGetNoDefaultExecutionTimeout(type: String) throws {
        let job = JobNormalizer().normalize(try JobSpecParser.parse("Type: \(type)\nTasks: [{Engine: {Type: noop}}]"))
        #expect(job.task.timeouts.executionTimeout == 0)
        #expect(job.task.timeouts.executionDeadline(jobType: job.jobType) == nil, "a \(type) job must run until it is stopped")
        // One that sets a timeout keeps it.
        let bounded = JobNormalizer().normalize(
            try JobSpecParser.parse("Type: \(type)\nTasks: [{Engine: {Type: noop}, Timeouts: {ExecutionTimeout: 90}}]"))
        #expect(bounded.task.timeouts.executionDeadline(jobType: bounded.jobType) == 90)
        #expect(TimeoutConfig().executionDeadline(jobType: .batch) == 1800)
        #expect(TimeoutConfig().executionDeadline(jobType: .ops) == 1800)
    }

    @Test func defaultsAreFilledIn() throws {
        let job = JobNormalizer().normalize(try JobSpecParser.parse("Tasks: [{Engine: {Type: noop}}]"))
        #expect(job.namespace == "default")
        #expect(job.type == "batch")
        #expect(job.count == 1)
        #expect(job.task.name == "main")
        #expect(job.task.publisher.type == "ipfs")
        #expect(job.task.timeouts.executionTimeout == 1800)
    }

    @Test(arguments: [
        ("", "empty"), ("- just\n- a list", "mapping"), ("Tasks: [unclosed", "not valid YAML"),
        ("Tasks: 5", "Tasks"), ("Count: many\nTasks: []", "Count"),
    ])
    func malformedSpecsGetSpecificErrors(text: String, mentions: String) {
        do {
            _ = try JobSpecParser.parse(text)
            Issue.record("expected an error for \(text)")
        } catch let error as CodError {
            #expect(error.code == .invalidJob)
            #expect(error.message.contains(mentions), "\(error.message)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func resourceNotation() {
        #expect(ResourceParsing.cpu("500m") == 0.5)
        #expect(ResourceParsing.cpu("2") == 2)
        #expect(ResourceParsing.cpu("-1") == nil)
        #expect(ResourceParsing.bytes("512Mb") == 512_000_000)
        #expect(ResourceParsing.bytes("1GiB") == 1 << 30)
        #expect(ResourceParsing.bytes("100mb") == 100_000_000)
        #expect(ResourceParsing.bytes("2048") == 2048)
        #expect(ResourceParsing.bytes("12 parsecs") == nil)
        #expect(ResourceParsing.gpu("1") == 1)
    }
}
