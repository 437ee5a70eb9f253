public import ArgumentParser
public import ComputeNode
import Foundation
import JobSpec
import Models

/// A compute node's engine settings: which engines, the Docker socket and pull policy, and the
/// network modes jobs may use.
public struct EngineOptions: ParsableArguments, Sendable {
    public init() {}

    @Option(help: "Engines to offer, comma-separated (default: every one found: wasm, docker, process).") public var engines: String?
    @Option(name: .customLong("docker-host"), help: "Docker API socket, unix:///PATH (default: DOCKER_HOST, else /var/run/docker.sock).") public var dockerHost: String?
    @Option(name: .customLong("docker-pull"), help: "Image pull policy: missing (default), never (air-gapped), always.") public var dockerPull = "missing"
    @Option(name: .customLong("allow-network"), help: "Network modes jobs may use, comma-separated: none, host, full (default: none).") public var allowNetwork = "none"
    @Option(name: .customLong("container-cap-add"), help: "Linux capabilities containers keep, comma-separated (default: none; all others are dropped).")
    public var containerCapAdd = ""
    @Option(name: .customLong("python-index-url"), help: "Package index for Python job requirements (default: none; only the operator sets it).")
    public var pythonIndexURL: String?
    @Option(name: .customLong("price-list"), help: "YAML file of this node's prices in micro-credits (Start, PerCPUSecond, PerGiBSecond, PerGPUSecond, PerGiBFetched, Minimum); published with the node's info.")
    public var priceList: String?
    @Option(name: .customLong("price-script"), help: "A program that prices each execution (JSON about it on stdin, a price list or one number on stdout; sandboxed, 5 s); it may only lower --price-list's rates.")
    public var priceScript: String?

    /// The price list file, parsed.
    func loadPriceList() throws -> PriceList? {
        guard let priceList else { return nil }
        guard let data = FileManager.default.contents(atPath: priceList) else {
            throw ValidationError("--price-list: cannot read \(priceList)")
        }
        do {
            return try PriceListParser.parse(String(decoding: data, as: UTF8.self), source: priceList)
        } catch let error as CodError {
            throw ValidationError("--price-list: \(error.message)")
        }
    }

    public func validate() throws {
        let prices = try loadPriceList()
        if let priceScript {
            guard prices != nil else { throw ValidationError("--price-script needs --price-list: the list is the most the script may ask") }
            guard FileManager.default.isExecutableFile(atPath: priceScript) else {
                throw ValidationError("--price-script: \(priceScript) is not an executable file")
            }
        }
        guard PullPolicy(rawValue: dockerPull) != nil else { throw ValidationError("--docker-pull must be missing, never or always") }
        for mode in list(allowNetwork) where !["none", "host", "full"].contains(mode) {
            throw ValidationError("--allow-network takes none, host and full, not \(mode)")
        }
        for capability in list(containerCapAdd) where capability.range(of: "^(cap_)?[a-z_]+$", options: .regularExpression) == nil {
            throw ValidationError("--container-cap-add takes capability names such as CHOWN or NET_BIND_SERVICE, not \(capability)")
        }
        if let pythonIndexURL, !(pythonIndexURL.hasPrefix("http://") || pythonIndexURL.hasPrefix("https://")) {
            throw ValidationError("--python-index-url must be an http:// or https:// URL")
        }
        for engine in list(engines ?? "") where !["wasm", "docker", "process"].contains(engine) {
            throw ValidationError("--engines takes wasm, docker and process, not \(engine)")
        }
    }

    private func list(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
    }

    /// Applies the options (already checked by `validate()` when they were parsed).
    public func apply(to config: inout ComputeNodeConfig) {
        if let engines { config.engines = list(engines) }
        config.dockerSocket = dockerHost
        config.pullPolicy = PullPolicy(rawValue: dockerPull) ?? .missing
        var networks = list(allowNetwork)
        if !networks.contains("none") { networks.insert("none", at: 0) }
        config.networks = networks
        config.containerCapabilities = containerCapAdd.split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces).uppercased() }.filter { !$0.isEmpty }
        config.pythonIndexURL = pythonIndexURL
        config.priceList = try? loadPriceList()
        config.priceScript = priceScript
    }
}

