public import ArgumentParser
import CodBench
import Foundation
import Models

/// The `cod` command.
public struct Cod: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cod",
        abstract: "Cod runs your programs next to your data, on many machines at once.",
        version: CodVersion.string,
        subcommands: [WasmRunnerCommand.self, VersionCommand.self],
        groupedSubcommands: [
            CommandGroup(name: "Jobs", subcommands: [JobCommand.self, ScheduleCommand.self, WasmCommand.self, DockerCommand.self, ExecCommand.self, PythonCommand.self]),
            CommandGroup(name: "Data", subcommands: [DataCommand.self]),
            CommandGroup(name: "Cluster", subcommands: [NodeCommand.self, AgentCommand.self, AuthCommand.self, ReceiptCommand.self, AccountCommand.self, LedgerCommand.self]),
            CommandGroup(name: "Servers", subcommands: [Serve.self, Devstack.self, Bench.self]),
        ]
    )

    public init() {}

    /// Runs the CLI, turning errors into a message and a non-zero exit.
    public static func runMain() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CodError {
            Output.note("Error: \(error.message)")
            if let hint = error.hint { Output.note("Hint: \(hint)") }
            Foundation.exit(1)
        } catch let error as CLIFailure {
            Output.note("Error: \(error.description)")
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}

struct VersionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the client and server versions.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        print("Client: \(CodVersion.string)")
        if let server = try? await global.client().version() {
            print("Server: \(server.gitVersion)")
        } else {
            print("Server: not reachable at \(global.host):\(global.port)")
        }
    }
}
