import Foundation
import Models

/// Finds NVIDIA GPUs with `nvidia-smi`, as Bacalhau does.
enum GPUDetector {
    /// The GPUs `nvidia-smi` reports, and a line saying what was found (or why none).
    /// `command` is the nvidia-smi to run; nil looks it up on PATH.
    static func detect(command: String? = nil) -> ([GPUInfo], String) {
        guard let command = command ?? SandboxExecutor.findExecutable("nvidia-smi") else {
            return ([], "no GPUs: nvidia-smi is not installed")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command)
        process.arguments = ["--query-gpu=index,name,memory.total,pci.bus_id", "--format=csv,noheader,nounits"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return ([], "no GPUs: \(command) cannot be started: \(error)")
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            return ([], "no GPUs: nvidia-smi failed (status \(process.terminationStatus)); is the NVIDIA driver loaded?")
        }
        let gpus = GPUInfo.parseNvidiaSMI(String(decoding: data, as: UTF8.self))
        if gpus.isEmpty { return ([], "no GPUs: nvidia-smi lists none") }
        return (gpus, "\(gpus.count) GPU\(gpus.count == 1 ? "" : "s"): " + gpus.map(\.name).joined(separator: ", "))
    }
}
