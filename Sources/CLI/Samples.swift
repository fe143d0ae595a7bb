import ArgumentParser
import Foundation
import TesseraData

/// `tessera samples`: the project's own sample data.
struct Samples: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The project's generated sample data.", subcommands: [Generate.self])

    /// `tessera samples generate`: writes the synthetic microscopy set deterministically.
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write synthetic microscopy-like images (cells with nuclei) with 3-class masks.",
            discussion: """
                OUT/train (24 PNG, 128x128), OUT/test (8 JPEG, 128x128) and OUT/large (2 PNG, 512x384), each with \
                images/ and masks/ (0 background, 1 cell, 2 nucleus). The same seed gives the same files.
                """)
        @Option(help: "Output folder.") var out = "samples"
        @Option(help: "Random seed.") var seed: UInt64 = 0

        func run() throws {
            let files = try CellSampleSet.generate(into: URL(fileURLWithPath: out), seed: seed)
            let bytes = files.compactMap { try? FileManager.default.attributesOfItem(atPath: $0.path)[.size] as? Int }
                .reduce(0, +)
            print(
                "wrote \(files.count) files (\(bytes / 1024) KB) to \(out): classes \(CellSample.classNames.joined(separator: ", "))"
            )
        }
    }
}
