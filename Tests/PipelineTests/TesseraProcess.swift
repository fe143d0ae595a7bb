import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine
import TesseraModels
import TestSupport
import XCTest

/// The release `tessera` binary run as a user runs it, so a crash (a trap is a signal, not an exit status) fails
/// a test instead of ending the test process.
struct TesseraProcess {
    struct Result {
        let status: Int32
        /// false when the process ended by a signal (a crash).
        let exited: Bool
        let stdout: String
        let stderr: String
    }

    static var binary: URL { SharedFixtures.packageRoot.appendingPathComponent(".build/release/tessera") }

    /// One policy for every test that launches the binary: it must exist and be newer than every source file and
    /// the package manifest (`make test` builds it with the tests), or the test fails saying so; a stale binary
    /// would test yesterday's code.
    static func requireFreshBinary() throws {
        let fm = FileManager.default
        func modified(_ url: URL) -> Date? { (try? fm.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date }
        guard fm.isExecutableFile(atPath: binary.path), let built = modified(binary) else {
            throw BinaryProblem(reason: "\(binary.path) is missing: build it first (make test builds it)")
        }
        let root = SharedFixtures.packageRoot
        // Sources only: a manifest edit that changes nothing compiled (a comment, a test target's excludes)
        // relinks nothing, so the binary would stay "older" however often it is rebuilt.
        var newest = Date.distantPast
        var newestFile = "Sources"
        let sources = root.appendingPathComponent("Sources")
        for path in fm.enumerator(atPath: sources.path)?.allObjects as? [String] ?? [] {
            if let date = modified(sources.appendingPathComponent(path)), date > newest {
                (newest, newestFile) = (date, "Sources/" + path)
            }
        }
        guard built >= newest else {
            throw BinaryProblem(
                reason: "\(binary.path) is older than \(newestFile): rebuild it (swift build -c release) first")
        }
    }

    struct BinaryProblem: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    /// `environment` entries are added to (or replace) this process's environment.
    /// `executable`: another program (`mpirun`) to run with `arguments` instead of `tessera`.
    static func run(
        _ arguments: [String], in folder: URL? = nil, environment: [String: String] = [:], executable: URL? = nil
    ) throws -> Result {
        try requireFreshBinary()
        let process = Process()
        process.executableURL = executable ?? binary
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if let folder { process.currentDirectoryURL = folder }
        // Output goes to files: a pipe that fills up would block the process.
        let stem = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-proc-\(UUID().uuidString)")
        let outURL = stem.appendingPathExtension("out"), errURL = stem.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, exited: process.terminationReason == .exit,
            stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
            stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }

    /// An untrained U-Net checkpoint (depth 2, width 4) taking `channels` input channels, written to `url`.
    static func checkpoint(channels: Int, classes: Int = 3, at url: URL) throws {
        let spec = NetworkSpec(unet: UNetConfig(inChannels: channels, classes: classes, depth: 2, width: 4))
        var g = RandomGenerator(seed: 7)
        let model = try spec.build(generator: &g)
        let info = CheckpointInfo(
            network: spec, classNames: (0..<classes).map { "c\($0)" },
            classColors: CheckpointInfo.vocColors(classes), maskKind: "label",
            normalizationMean: [Float](repeating: 0.5, count: channels),
            normalizationStd: [Float](repeating: 0.25, count: channels), crop: 32)
        try Checkpoint.write(model: model, optimizer: nil, info: info, to: url)
    }

    /// Every file under `folder`, relative, sorted.
    static func files(under folder: URL) -> [String] {
        (FileManager.default.enumerator(atPath: folder.path)?.compactMap { $0 as? String } ?? []).sorted()
    }
}
