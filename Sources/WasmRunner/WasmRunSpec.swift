import Foundation

/// Everything the WASM runner process needs, sent by the compute node as one line of JSON.
public struct WasmRunSpec: Codable, Sendable {
    /// Host folder that is the module's `/`.
    public var rootDirectory: String
    /// Extra folders mounted at guest paths (result paths), longest match wins in wasi-libc.
    public var mounts: [Mount]
    /// Host path of the entry module.
    public var entryModule: String
    /// Host paths of modules to instantiate first, in order.
    public var importModules: [String]
    public var entrypoint: String
    /// argv, including argv[0].
    public var arguments: [String]
    public var environment: [String: String]
    /// Linear memory cap in bytes across all memories; 0 for none.
    public var memoryLimitBytes: UInt64
    /// Instruction budget (WasmKit fuel); the module traps when it is spent. nil for none.
    public var fuel: UInt64?
    public var stdoutPath: String
    public var stderrPath: String

    public struct Mount: Codable, Sendable {
        public var guestPath: String
        public var hostPath: String
        public init(guestPath: String, hostPath: String) {
            self.guestPath = guestPath
            self.hostPath = hostPath
        }
    }

    public init(
        rootDirectory: String, mounts: [Mount], entryModule: String, importModules: [String], entrypoint: String,
        arguments: [String], environment: [String: String], memoryLimitBytes: UInt64, fuel: UInt64? = nil,
        stdoutPath: String, stderrPath: String
    ) {
        self.rootDirectory = rootDirectory
        self.mounts = mounts
        self.entryModule = entryModule
        self.importModules = importModules
        self.entrypoint = entrypoint
        self.arguments = arguments
        self.environment = environment
        self.memoryLimitBytes = memoryLimitBytes
        self.fuel = fuel
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
    }
}

/// How a run ended, as the runner saw it.
public struct WasmOutcome: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// The module ran and exited (normally or through `proc_exit`).
        case exited
        /// The module trapped (unreachable, out-of-bounds, stack overflow...).
        case trapped
        /// The module could not be loaded, linked or started.
        case invalid
    }

    public var kind: Kind
    public var exitCode: Int32
    public var message: String
    /// The modules' linear memory at its largest, and held over time (GiB-seconds, exact:
    /// memory only changes when a module grows it).
    public var peakMemoryBytes: UInt64?
    public var memoryGiBSeconds: Double?

    public init(kind: Kind, exitCode: Int32, message: String, peakMemoryBytes: UInt64? = nil, memoryGiBSeconds: Double? = nil) {
        self.kind = kind
        self.exitCode = exitCode
        self.message = message
        self.peakMemoryBytes = peakMemoryBytes
        self.memoryGiBSeconds = memoryGiBSeconds
    }
}
