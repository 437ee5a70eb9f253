import APIClient
import ArgumentParser
import Foundation
import Models
import Wire

struct AuthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auth", abstract: "Log in, see who you are, and manage users and their capabilities.",
        discussion: """
            The CLI sends COD_API_KEY (or BACALHAU_API_KEY) when set, else what cod auth login saved
            for the API's address.
            Capabilities: read:job write:job read:node write:node read:agent write:agent read:data
            write:data admin and * (all but admin); job actions may be limited to namespaces with
            @ns1,ns2 (read:job,write:job@team-a).
            """,
        subcommands: [Login.self, Logout.self, WhoAmI.self, Info.self, UserCommand.self])

    struct Login: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an API key (or a user name and password) and save it for this API address (0600).")
        @Option(help: "Log in with this user's password instead of an API key.") var username: String?
        @OptionGroup var api: APIOptions

        func run() async throws {
            let credential: ClientCredential
            if let username {
                credential = .password(user: username, password: try Secret.read(prompt: "Password for \(username): "))
            } else {
                credential = .apiKey(try Secret.read(prompt: "API key: "))
            }
            let me = try await CodClient(baseURL: api.baseURL, credential: credential, tls: try api.tlsPolicy()).whoAmI()
            try CredentialStore.standard.save(credential, for: api.baseURL)
            print("Logged in to \(api.baseURL) as \(me.name); saved in \(CredentialStore.standard.file(for: api.baseURL).path).")
        }
    }

    struct Logout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Forget the credential saved for this API address.")
        @OptionGroup var api: APIOptions

        func run() async throws {
            let removed = CredentialStore.standard.remove(for: api.baseURL)
            print(removed ? "Logged out of \(api.baseURL)." : "No credential was saved for \(api.baseURL).")
        }
    }

    struct WhoAmI: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Show who the credentials name and what they allow.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let me = try await global.client().whoAmI()
            try global.print(me) {
                print("\(me.name): \(me.capabilities.map(Output.capability).joined(separator: "; "))")
            }
        }
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show which authentication methods the API offers (needs no credentials).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let config = try await global.client().authConfig()
            try global.print(config) {
                print("Methods: \(config.methods.joined(separator: ", "))")
                print("Gateway (/ipfs): \(config.gatewayOpen ? "open to anyone" : "needs read:data")")
            }
        }
    }
}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Add, list and remove users (admin only).", subcommands: [Add.self, List.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a user with a new API key (printed once; the cluster keeps only its hash), or with a password.",
            discussion: "cod auth user add alice --capability read:job,write:job@team-a --capability read:data,write:data")
        @Argument(help: "The user's name (letters, digits, '-', '_', '.').") var name: String
        @Option(name: .customLong("capability"), help: "ACTIONS[@NAMESPACES], repeatable (see cod auth --help).") var capabilities: [String] = []
        @Flag(help: "Give the user a password (asked for, or read from standard input) instead of an API key.") var password = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let parsed = try capabilities.map { text in
                do { return try Capability.parse(text) } catch let error as CodError { throw CLIFailure(error.description) }
            }
            guard !parsed.isEmpty else { throw ValidationError("give at least one --capability, e.g. --capability read:job,write:job") }
            let secret = password ? try Secret.read(prompt: "Password for \(name) (10 characters or more): ") : nil
            let response = try await global.client().createUser(CreateUserRequest(name: name, capabilities: parsed, password: secret))
            try global.print(response) {
                print("Added user \(response.user.name): \(response.user.capabilities.map(Output.capability).joined(separator: "; ")).")
                if let key = response.apiKey {
                    print("API key (shown only now; give it to the user, who sets COD_API_KEY or runs cod auth login):")
                    print(key)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users and their capabilities (never their keys).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let users = try await global.client().users()
            try global.print(ListResponse(items: users)) {
                print(Output.table(
                    ["NAME", "CREDENTIAL", "CAPABILITIES", "CREATED"],
                    users.map { user in
                        [user.name, user.hasPassword ? "password" : user.keyPrefix + "…",
                         user.capabilities.map(Output.capability).joined(separator: "; "), Output.time(user.createTime)]
                    }))
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user: its key stops working at once.")
        @Argument(help: "The user's name.") var name: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.client().removeUser(name)
            print("Removed user \(name).")
        }
    }
}

extension Output {
    /// `read:job,write:job@team-a` as `cod auth user add` takes it.
    static func capability(_ capability: Capability) -> String {
        capability.actions.map(\.rawValue).joined(separator: ",")
            + (capability.namespaces.isEmpty ? "" : "@" + capability.namespaces.joined(separator: ","))
    }
}

/// Reading a secret without echoing it on a terminal, or as one line of standard input.
enum Secret {
    static func read(prompt: String) throws -> String {
        let value: String?
        if isatty(0) != 0 {
            value = getpass(prompt).map { String(cString: $0) }
        } else {
            value = readLine(strippingNewline: true)
        }
        guard let secret = value?.trimmingCharacters(in: .whitespacesAndNewlines), !secret.isEmpty else {
            throw CLIFailure("nothing was entered")
        }
        return secret
    }
}
