// swift-tools-version:6.1
import PackageDescription

// Pure core modules import no I/O library: they take time and randomness as inputs and are
// deterministic. Shell modules own sockets, files, databases and processes.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "cod",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cod", targets: ["cod"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/swiftwasm/WasmKit.git", from: "0.4.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
    ],
    targets: [
        // MARK: Core (pure)
        .target(name: "Models", swiftSettings: swiftSettings),
        .target(name: "Scheduler", dependencies: ["Models"], swiftSettings: swiftSettings),
        // Pure: signature checks are computation (keys are made by the node, outside).
        .target(name: "Wire", dependencies: ["Models", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: swiftSettings),
        // Pure as well: SHA-256 from swift-crypto is computation, not I/O.
        .target(
            name: "ContentAddressing", dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings),

        // MARK: Shells
        .target(name: "CSystemShims"),
        // Writing untrusted trees without following links: openat/O_NOFOLLOW, nothing else.
        .target(name: "SafeFS", swiftSettings: swiftSettings),
        .target(
            name: "BlockStore",
            dependencies: ["ContentAddressing", "SafeFS", "CSystemShims", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings),
        .target(
            name: "NodeAPI",
            dependencies: [
                "Models", "Wire", "BlockStore", "ContentAddressing", "SafeFS",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "Archives",
            dependencies: [
                "SafeFS",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "JobSpec",
            dependencies: ["Models", "Wire", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings),
        .target(
            name: "StateStore",
            dependencies: ["Models", "Scheduler", "Wire", "ContentAddressing", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings),
        .target(
            name: "WasmRunner",
            dependencies: [
                "Models", "CSystemShims",
                .product(name: "WasmKit", package: "WasmKit"),
                .product(name: "WasmKitWASI", package: "WasmKit"),
                .product(name: "WASI", package: "WasmKit"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "ComputeNode",
            dependencies: [
                "Models", "Wire", "JobSpec", "Archives", "WasmRunner", "BlockStore", "ContentAddressing", "NodeAPI", "SafeFS", "APIClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "OrchestratorServer",
            dependencies: [
                "Models", "Scheduler", "Wire", "StateStore", "Archives", "BlockStore", "ContentAddressing", "NodeAPI", "SafeFS", "JobSpec",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "APIClient",
            dependencies: [
                "Models", "Wire", "Archives", "BlockStore", "ContentAddressing",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings),
        // How the binary assembles servers: a devstack's services, engine options, logging.
        .target(
            name: "CodServers",
            dependencies: [
                "Models", "APIClient", "ComputeNode", "NodeAPI", "OrchestratorServer", "SafeFS", "JobSpec",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        // The benchmark suites, `cod bench jobs|import|docker|soak|scale|dataset`.
        .target(
            name: "CodBench",
            dependencies: [
                "Models", "Wire", "APIClient", "CodServers", "CodTestKit", "ComputeNode", "BlockStore", "ContentAddressing", "CSystemShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "CodCLI",
            dependencies: [
                "Models", "Scheduler", "Wire", "JobSpec", "APIClient", "OrchestratorServer", "ComputeNode", "WasmRunner",
                "Archives", "BlockStore", "ContentAddressing", "CSystemShims", "SafeFS", "CodServers", "CodBench", "NodeAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings),

        // MARK: Test support
        // Cluster processes, free ports, fixtures and a plan harness, for the tests and the benches.
        .target(
            name: "CodTestKit",
            dependencies: ["Models", "Scheduler", "Wire", "APIClient"],
            swiftSettings: swiftSettings),

        // MARK: Executable
        .executableTarget(name: "cod", dependencies: ["CodCLI"], swiftSettings: swiftSettings),

        // MARK: Tests
        .testTarget(name: "ModelsTests", dependencies: ["Models", "JobSpec"], swiftSettings: swiftSettings),
        .testTarget(name: "SchedulerTests", dependencies: ["Models", "Scheduler", "CodTestKit", "JobSpec"], swiftSettings: swiftSettings),
        .testTarget(name: "WireTests", dependencies: ["Models", "Wire"], swiftSettings: swiftSettings),
        .testTarget(name: "StateStoreTests", dependencies: ["Models", "Scheduler", "StateStore", "Wire", .product(name: "GRDB", package: "GRDB.swift")], swiftSettings: swiftSettings),
        .testTarget(name: "ArchivesTests", dependencies: ["Archives", "SafeFS"], swiftSettings: swiftSettings),
        .testTarget(
            name: "BlockStoreTests", dependencies: ["BlockStore", "ContentAddressing"], swiftSettings: swiftSettings),
        .testTarget(
            name: "ContentAddressingTests",
            dependencies: ["ContentAddressing", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "_CryptoExtras", package: "swift-crypto")],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FuzzTests",
            dependencies: ["Archives", "BlockStore", "ContentAddressing", "JobSpec", "Models", "Wire"],
            exclude: ["Corpus"], swiftSettings: swiftSettings),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Models", "Wire", "APIClient", "CodTestKit", "ComputeNode", "OrchestratorServer", "Archives", "WasmRunner",
                "ContentAddressing", "SafeFS",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings),
    ]
)
