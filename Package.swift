// swift-tools-version:6.0
import PackageDescription

// Layers, each depending only on the ones below it:
// CKernels (C micro-kernels) -> Engine (tensors, ops, autodiff) -> NN (modules, losses, optimizers) -> Models (U-Net,
// ResNet, ...); Engine -> Objects (connected components, measurements, distance transform, watershed, on arrays
// alone); CImageCodecs (libpng/libjpeg/libtiff shims) and Objects -> Data (codecs, datasets, augmentation, loader,
// border weights); CMPI (Open MPI at run time) -> Distributed (the processes of a data-parallel job).
// Settings (option tables: one declaration per option, read by the command line, the pipeline schema and each
// stage's validate()) sits beside them, on nothing. Above them the user's verbs: Console (progress, logging) and
// Checkpoint (model files, on the model layers alone) -> Inference (tiled inference, the batch runner, segment,
// outputs, evaluation) -> Training (the recipe `TrainingConfig`, the trainer, metrics log) and Explain (Grad-CAM family) -> Run (YAML pipelines, report); Bench (benchmarks) beside them; CLI (the commands,
// run in-process by CLITests) -> tessera (the executable: one line).
let package = Package(
    name: "Tessera",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tessera", targets: ["tessera"]),
        .library(name: "TesseraEngine", targets: ["TesseraEngine"]),
        .library(name: "TesseraNN", targets: ["TesseraNN"]),
        .library(name: "TesseraModels", targets: ["TesseraModels"]),
        .library(name: "TesseraData", targets: ["TesseraData"]),
        .library(name: "TesseraInference", targets: ["TesseraInference"]),
        .library(name: "TesseraTraining", targets: ["TesseraTraining"]),
        .library(name: "TesseraExplain", targets: ["TesseraExplain"]),
        .library(name: "TesseraRun", targets: ["TesseraRun"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3")
    ],
    targets: [
        .target(name: "CKernels", path: "Sources/CKernels"),
        .target(
            name: "CImageCodecs",
            path: "Sources/CImageCodecs",
            linkerSettings: [.linkedLibrary("png"), .linkedLibrary("jpeg"), .linkedLibrary("tiff"), .linkedLibrary("z")]
        ),
        .target(name: "CMPI", path: "Sources/CMPI", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "TesseraEngine", dependencies: ["CKernels"], path: "Sources/Engine"),
        .target(name: "TesseraDistributed", dependencies: ["CMPI", "TesseraEngine"], path: "Sources/Distributed"),
        .target(name: "TesseraNN", dependencies: ["CKernels", "TesseraEngine"], path: "Sources/NN"),
        .target(name: "TesseraModels", dependencies: ["TesseraEngine", "TesseraNN"], path: "Sources/Models"),
        .target(
            name: "TesseraData", dependencies: ["CKernels", "TesseraEngine", "CImageCodecs", "TesseraObjects"],
            path: "Sources/Data"),
        .target(name: "TesseraObjects", dependencies: ["TesseraEngine"], path: "Sources/Objects"),
        .target(name: "TesseraSettings", path: "Sources/Settings"),
        .target(
            name: "TesseraConsole", dependencies: [.product(name: "Logging", package: "swift-log")],
            path: "Sources/Console"),
        .target(
            name: "TesseraCheckpoint",
            dependencies: ["TesseraEngine", "TesseraNN", "TesseraModels"], path: "Sources/Checkpoint"),
        .target(
            name: "TesseraInference",
            dependencies: [
                "TesseraEngine", "TesseraNN", "TesseraModels", "TesseraData", "TesseraConsole",
                "TesseraCheckpoint", "TesseraObjects", "TesseraSettings",
                .product(name: "Crypto", package: "swift-crypto")
            ],
            path: "Sources/Inference"),
        .target(
            name: "TesseraTraining",
            dependencies: [
                "TesseraEngine", "TesseraNN", "TesseraModels", "TesseraData", "TesseraSettings", "TesseraConsole",
                "TesseraCheckpoint", "TesseraInference", "TesseraDistributed"
            ],
            path: "Sources/Training"),
        .target(
            name: "TesseraExplain",
            dependencies: [
                "TesseraEngine", "TesseraNN", "TesseraModels", "TesseraData", "TesseraConsole",
                "TesseraCheckpoint", "TesseraInference", "TesseraObjects", "TesseraSettings"
            ],
            path: "Sources/Explain"),
        .target(
            name: "TesseraRun",
            dependencies: [
                "TesseraEngine", "TesseraNN", "TesseraModels", "TesseraData", "TesseraConsole",
                "TesseraCheckpoint", "TesseraInference", "TesseraTraining", "TesseraExplain", "TesseraObjects",
                "TesseraSettings", .product(name: "Yams", package: "Yams")
            ],
            path: "Sources/Run"),
        .target(
            name: "TesseraBench",
            dependencies: ["TesseraEngine", "TesseraNN", "TesseraModels", "TesseraData", "TesseraObjects"],
            path: "Sources/Bench"),
        .target(
            name: "TesseraCLI",
            dependencies: [
                "TesseraEngine", "TesseraNN", "TesseraModels", "TesseraData", "TesseraConsole", "TesseraCheckpoint",
                "TesseraInference", "TesseraTraining", "TesseraExplain", "TesseraRun", "TesseraBench", "TesseraObjects",
                "TesseraDistributed", "TesseraSettings",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log")
            ],
            path: "Sources/CLI"
        ),
        .executableTarget(name: "tessera", dependencies: ["TesseraCLI"], path: "Sources/tessera"),
        .target(name: "TestSupport", dependencies: ["TesseraEngine"], path: "Tests/TestSupport"),
        .target(name: "CTestSupport", path: "Tests/CTestSupport", linkerSettings: [.linkedLibrary("z")]),
        .testTarget(name: "EngineTests", dependencies: ["CKernels", "TesseraEngine", "TestSupport"]),
        .testTarget(name: "NNTests", dependencies: ["TesseraEngine", "TesseraNN", "TestSupport"]),
        .testTarget(
            name: "ModelsTests",
            dependencies: ["TesseraEngine", "TesseraNN", "TesseraModels", "TesseraData", "TestSupport"]),
        .testTarget(name: "DataTests", dependencies: ["TesseraEngine", "TesseraData", "TestSupport", "CTestSupport"]),
        .testTarget(name: "ObjectsTests", dependencies: ["TesseraObjects"]),
        .testTarget(
            name: "CLITests",
            dependencies: [
                "TesseraCLI", "TesseraCheckpoint", "TesseraData", "TesseraEngine", "TesseraInference", "TesseraExplain",
                "TesseraRun",
                "TesseraSettings", "TestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]),
        .testTarget(
            name: "PipelineTests",
            dependencies: [
                "TesseraEngine", "TesseraNN", "TesseraModels", "TesseraData", "TesseraCheckpoint",
                "TesseraInference", "TesseraTraining", "TesseraExplain", "TesseraRun", "TesseraObjects",
                "TesseraSettings", "TesseraConsole", "TestSupport"
            ],
            // Reference tensors the tests read by path, and the script that makes them.
            exclude: ["Fixtures"])
    ],
    swiftLanguageModes: [.v6]
)
