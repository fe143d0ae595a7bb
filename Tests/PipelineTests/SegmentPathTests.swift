import Foundation
import TesseraData
import TesseraEngine
import TesseraInference
import TesseraObjects
import TestSupport
import XCTest

/// Every input format x output set x instance mode goes through `SegmentRun.segment`'s one path (the tiled
/// inference as splitter and network, then the consumers), PNG and TIFF outputs, whole (one chunk) and streamed
/// (256-pixel chunks): every variant of a combination writes the same pixels. Masks, label images, colour masks
/// and overlays (instance outlines included) are equal sample for sample, probabilities equal, logits within
/// float rounding of a chunk's sums, and the objects tables and report numbers the same. (Outputs equal to the
/// code before this path's rebuild were checked against the earlier binary, BENCHMARKS.md "One path per image".)
final class SegmentPathTests: XCTestCase {
    /// The pages of an output (one for a PNG, every page of a TIFF).
    func pages(_ url: URL) throws -> [Image] {
        let source = try PixelSource(url: url, tiffPages: .slices) { try ImageCodec.decode($0) }
        return try (0..<source.slices).map {
            try source.window(PixelWindow(x: 0, y: 0, width: source.width, height: source.height), slice: $0)
        }
    }

    func testEveryCombinationWritesTheSamePixelsOnEveryPath() throws {
        let folder = try TemporaryFolder("tessera-paths")
        let checkpoint = folder.file("model.safetensors")
        try TesseraProcess.checkpoint(channels: 1, classes: 3, at: checkpoint)
        // A generated slide field across the 256-pixel chunks, as a TIFF and as a PNG of the same pixels.
        try FileManager.default.createDirectory(at: folder.file("in"), withIntermediateDirectories: true)
        _ = try CellSlide.write(to: folder.file("in/field.tif"), width: 600, height: 300, bitDepth: 16, seed: 5)
        try ImageCodec.write(try ImageCodec.decode(folder.file("in/field.tif")), to: folder.file("in/field.png"))
        let outputSets: [Set<SegmentOutput>] = [[.mask], Set(SegmentOutput.allCases)]
        let modes: [(String, InstanceSettings?)] = [
            ("none", nil), ("components", InstanceSettings()),
            (
                "watershed",
                {
                    var s = InstanceSettings(); s.method = .watershed; return s
                }()
            ),
            (
                "holes",
                {
                    var s = InstanceSettings(); s.maxHole = 20; return s
                }()
            )
        ]
        var combinations = 0
        for input in ["field.png", "field.tif"] {
            for outputs in outputSets {
                for (mode, instances) in modes {
                    var runs: [(name: String, out: URL, format: OutputFileFormat, record: SegmentRecord)] = []
                    for format in OutputFileFormat.allCases {
                        for chunk in [2048, 256] {
                            var o = SegmentOptions()
                            o.outputs = outputs
                            o.instances = instances
                            o.outputFormat = format
                            o.chunk = chunk
                            o.tile = 64
                            let name = "\(input)-\(outputs.count)-\(mode)-\(format.rawValue)-\(chunk)"
                            let out = folder.file(name)
                            let summary = try SegmentRun(checkpoint: checkpoint, options: o, out: out).run(
                                inputs: [folder.file("in/\(input)").path])
                            XCTAssertEqual(summary.failed, 0, "\(name): \(summary.records.first?.error ?? "")")
                            runs.append((name, out, format, try XCTUnwrap(summary.records.first)))
                        }
                    }
                    let reference = runs[0]
                    func file(
                        _ run: (name: String, out: URL, format: OutputFileFormat, record: SegmentRecord), _ kind: String
                    )
                        -> URL
                    {
                        let ext = run.format == .tiff ? "tif" : "png"
                        return kind.isEmpty
                            ? run.out.appendingPathComponent("field.\(ext)")
                            : run.out.appendingPathComponent("\(kind)/field.\(ext)")
                    }
                    for run in runs.dropFirst() {
                        let what = "\(run.name) against \(reference.name)"
                        // The watershed of TIFF outputs in bands (256-row cores here, 128 rows of halo) is exact for
                        // objects within 128 rows of their seed only (`InstanceStage.watershedBands`); this model's
                        // objects span the image, so its objects are compared where they are whole (one band).
                        let banded = mode == "watershed" && run.format == .tiff && run.name.hasSuffix("-256")
                        XCTAssertEqual(run.record.pixels, reference.record.pixels, what)
                        if !banded { XCTAssertEqual(run.record.objects, reference.record.objects, what) }
                        var kinds = [""]
                        if outputs.contains(.color) { kinds.append("color") }
                        if outputs.contains(.overlay) && !banded { kinds.append("overlay") }
                        if instances != nil && !banded { kinds.append("instances") }
                        for kind in kinds {
                            let a = try pages(file(reference, kind)), b = try pages(file(run, kind))
                            XCTAssertEqual(a.count, b.count, "\(what) \(kind)")
                            for (x, y) in zip(a, b) {
                                XCTAssertTrue(Self.samePixels(x, y), "\(what) \(kind.isEmpty ? "mask" : kind)")
                            }
                        }
                        if instances != nil && !banded {
                            XCTAssertEqual(
                                try String(
                                    contentsOf: reference.out.appendingPathComponent("objects/field.csv"),
                                    encoding: .utf8),
                                try String(
                                    contentsOf: run.out.appendingPathComponent("objects/field.csv"), encoding: .utf8),
                                what)
                        }
                        if outputs.contains(.prob) {
                            let a = try Self.probability(reference.out, reference.format)
                            let b = try Self.probability(run.out, run.format)
                            XCTAssertEqual(a.count, b.count)
                            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? .max
                            XCTAssertLessThanOrEqual(worst, 1, "\(what) prob")
                        }
                    }
                    combinations += 1
                }
            }
        }
        XCTAssertEqual(combinations, 16)
    }

    /// Sample values (8- and 16-bit images of the same values compare equal; 32-bit label TIFFs read as floats).
    static func samePixels(_ a: Image, _ b: Image) -> Bool {
        guard a.width == b.width, a.height == b.height, a.channels == b.channels else { return false }
        for y in 0..<a.height {
            for x in 0..<a.width {
                for c in 0..<a.channels where a.sample(x: x, y: y, channel: c) != b.sample(x: x, y: y, channel: c) {
                    return false
                }
            }
        }
        return true
    }

    /// Probability samples of every class: PNG files `prob/field_<class>.png` or the TIFF's pages.
    static func probability(_ out: URL, _ format: OutputFileFormat) throws -> [Int] {
        let urls =
            format == .tiff
            ? [out.appendingPathComponent("prob/field.tif")]
            : (0..<3).map { out.appendingPathComponent("prob/field_c\($0).png") }
        var values: [Int] = []
        for url in urls {
            let source = try PixelSource(url: url, tiffPages: .slices) { try ImageCodec.decode($0) }
            for s in 0..<source.slices {
                let page = try source.window(
                    PixelWindow(x: 0, y: 0, width: source.width, height: source.height), slice: s)
                for i in 0..<(page.width * page.height) {
                    values.append(page.sample(x: i % page.width, y: i / page.width, channel: 0))
                }
            }
        }
        return values
    }
}
