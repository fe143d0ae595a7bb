import ArgumentParser
import Foundation
import TesseraData

/// `tessera samples`: the project's own sample data.
struct Samples: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The project's generated sample data.", subcommands: [Generate.self, Slide.self])

    /// `tessera samples generate`: writes the synthetic microscopy set deterministically.
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Write synthetic microscopy-like images (cells with nuclei) with 3-class masks, and a shape classification set.",
            discussion: """
                OUT/train (24 PNG, 128x128), OUT/test (8 JPEG, 128x128) and OUT/large (2 PNG, 512x384), each with \
                images/ and masks/ (0 background, 1 cell, 2 nucleus); OUT/shapes/train (800) and OUT/shapes/test \
                (200), 40x40 gray PNGs in class folders square, disc, triangle, cross. The same seed gives the same \
                files.
                """)
        @Option(help: "Output folder.") var out = "samples"
        @Option(help: "Random seed.") var seed: UInt64 = 0

        func run() throws {
            let root = URL(fileURLWithPath: out)
            let files =
                try CellSampleSet.generate(into: root, seed: seed)
                + ShapeSampleSet.generate(into: root.appendingPathComponent("shapes"), seed: seed)
            let bytes = files.compactMap { try? FileManager.default.attributesOfItem(atPath: $0.path)[.size] as? Int }
                .reduce(0, +)
            print(
                "wrote \(files.count) files (\(bytes / 1024) KB) to \(out): classes \(CellSample.classNames.joined(separator: ", "))"
            )
        }
    }

    /// `tessera samples slide`: a whole-slide-sized TIFF for streaming and memory checks.
    struct Slide: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a generated whole-slide TIFF of any size (cells, 16-bit gray, tiled, deflate).",
            discussion: """
                512 x 512 fields of generated cells side by side, written band by band (memory: one band); \
                BigTIFF past 2 GiB of samples. E.g. --size 60000x40000 (a 2.4-gigapixel slide).
                """)
        @Option(help: "Width x height in pixels, e.g. 16384x16384.") var size: String
        @Option(help: "Output file (.tif).") var out: String
        @Option(help: "Bits per sample: 8 or 16.") var bits = 16
        @Option(help: "Random seed.") var seed: UInt64 = 0

        func run() throws {
            let parts = size.lowercased().split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2 else { throw ValidationError("--size must be WIDTHxHEIGHT, not \(size)") }
            let t0 = Date()
            let bytes = try CellSlide.write(
                to: URL(fileURLWithPath: out), width: parts[0], height: parts[1], bitDepth: bits, seed: seed)
            print(
                String(
                    format: "wrote %@ (%dx%d, %.1f MB) in %.1f s", out, parts[0], parts[1], Double(bytes) / 1e6,
                    Date().timeIntervalSince(t0)))
        }
    }
}
