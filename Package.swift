// swift-tools-version:6.0
import PackageDescription

// Layers, each depending only on the ones below it:
// CKernels (C micro-kernels) -> Engine (tensors, ops, autodiff) -> NN (modules, losses, optimizers)
// -> Models (U-Net, ...) -> Data (codecs over CImageCodecs, datasets) -> Pipeline (train, segment, explain, bench) -> tessera (CLI).
let package = Package(
    name: "Tessera",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tessera", targets: ["tessera"]),
        .library(name: "TesseraEngine", targets: ["TesseraEngine"]),
        .library(name: "TesseraNN", targets: ["TesseraNN"]),
        .library(name: "TesseraModels", targets: ["TesseraModels"]),
        .library(name: "TesseraData", targets: ["TesseraData"]),
        .library(name: "TesseraPipeline", targets: ["TesseraPipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .target(name: "CKernels", path: "Sources/CKernels"),
        .target(
            name: "CImageCodecs",
            path: "Sources/CImageCodecs",
            linkerSettings: [.linkedLibrary("png"), .linkedLibrary("jpeg"), .linkedLibrary("z")]
        ),
        .target(name: "TesseraEngine", dependencies: ["CKernels"], path: "Sources/Engine"),
        .target(name: "TesseraNN", dependencies: ["CKernels", "TesseraEngine"], path: "Sources/NN"),
        .target(name: "TesseraModels", dependencies: ["TesseraNN"], path: "Sources/Models"),
        .target(name: "TesseraData", dependencies: ["CKernels", "TesseraEngine", "CImageCodecs"], path: "Sources/Data"),
        .target(name: "TesseraPipeline", dependencies: ["TesseraModels", "TesseraData", .product(name: "Yams", package: "Yams"),
                                                   .product(name: "Logging", package: "swift-log"),
                                                   .product(name: "Crypto", package: "swift-crypto")],
                path: "Sources/Pipeline"),
        .executableTarget(
            name: "tessera",
            dependencies: [
                "TesseraPipeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/tessera"
        ),
        .target(name: "TestSupport", dependencies: ["TesseraEngine"], path: "Tests/TestSupport"),
        .target(name: "CTestSupport", path: "Tests/CTestSupport", linkerSettings: [.linkedLibrary("z")]),
        .testTarget(name: "EngineTests", dependencies: ["TesseraEngine", "TestSupport"]),
        .testTarget(name: "NNTests", dependencies: ["TesseraNN", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["TesseraModels", "TesseraData", "TestSupport"]),
        .testTarget(name: "DataTests", dependencies: ["TesseraData", "TestSupport", "CTestSupport"]),
        .testTarget(name: "PipelineTests", dependencies: ["TesseraPipeline", "TesseraData", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
