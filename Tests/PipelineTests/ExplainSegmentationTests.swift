import Foundation
import TesseraConsole
import TesseraData
import TesseraEngine
import TesseraExplain
import TesseraInference
import TestSupport
import XCTest

/// `tessera explain` on a U-Net trained on ISBI: the membrane Grad-CAM lies on the membranes, region targets
/// (predicted pixels, a mask, a box) and raw `.npy` maps work.
final class ExplainSegmentationTests: XCTestCase {
    /// The membrane-class (0) Grad-CAM at the last decoder level puts more than half its mass on the true membrane
    /// pixels plus a 2-pixel band, on average over the run's validation slices.
    func testMembraneGradCAMLiesOnTheMembranes() throws {
        let checkpoint = try ISBICheckpoint.trained.get()
        let isbi = ISBICheckpoint.folder
        let dataset = try SegmentationDataset(
            images: isbi.appendingPathComponent("images"),
            masks: isbi.appendingPathComponent("masks"), maskKind: .binary, classes: 2)
        let validation = dataset.split(validationFraction: 0.2, seed: 0).validation.pairs.map(\.image.path)
        XCTAssertEqual(validation.count, 4)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-explain-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        var options = ExplainOptions()
        options.targetClass = "0"
        options.masks = isbi.appendingPathComponent("masks")
        options.outputs = [.raw]
        options.rawFormat = .npy
        let run = try ExplainRun(model: checkpoint, options: options, out: out)
        run.console = .quiet
        let summary = try run.run(inputs: validation)
        XCTAssertEqual(summary.failed, 0)
        let mass = try XCTUnwrap(summary.meanMassInTruth)
        let area = summary.records.compactMap(\.truthArea).reduce(0, +) / Double(summary.records.count)
        print(
            String(
                format: "ISBI membrane Grad-CAM (decoder.3): %.4f of the mass on membrane + 2 px (%.4f of the area)",
                mass, area))
        // A uniform map puts `area` of its mass on the band (the trivial baseline); the map must beat it clearly.
        XCTAssertGreaterThan(mass, 0.5)
        XCTAssertGreaterThan(mass, area + 0.25, "barely better than a uniform map")
        XCTAssertEqual(summary.records.first?.layer, "decoder.3")
        // report.json spells every key as report.csv does: snake_case, records and run-level keys alike.
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("report.json")))
        func keys(_ value: Any) -> [String] {
            if let d = value as? [String: Any] { return d.keys + d.values.flatMap(keys) }
            if let a = value as? [Any] { return a.flatMap(keys) }
            return []
        }
        let camel = keys(report).filter { $0.range(of: "^[a-z0-9_]+$", options: .regularExpression) == nil }
        XCTAssertEqual(camel, [], "report.json keys not in snake_case")
        XCTAssertNotNil((report as? [String: Any])?["mean_mass_in_truth"])
        // The raw map is a float32 .npy of the image's size with values in [0, 1].
        let npy = try Data(contentsOf: run.outputURL(.raw, relative: summary.records[0].path))
        XCTAssertEqual(Array(npy.prefix(6)), [0x93] + Array("NUMPY".utf8))
        let headerLength = Int(npy[8]) | Int(npy[9]) << 8
        XCTAssertEqual((10 + headerLength) % 64, 0)
        XCTAssertTrue(String(decoding: npy[10..<(10 + headerLength)], as: UTF8.self).contains("'shape': (512, 512)"))
        XCTAssertEqual(npy.count - 10 - headerLength, 512 * 512 * 4)
        // A rerun finds every .npy complete and reports the images existing, with their size from the input.
        let again = try run.run(inputs: validation)
        XCTAssertEqual(again.records.map(\.status), [BatchStatus](repeating: .existing, count: 4))
        XCTAssertEqual(again.records.map(\.width), [512, 512, 512, 512])
    }

    /// Region targets: a mask file selects the same region as a box; Layer-CAM (gradients per position) of a box
    /// in the top-left corner stays in that corner, while Grad-CAM at the last decoder level, whose gradient is the
    /// 1x1 head's weights inside the region, only rescales: its heatmap is the whole-image one. The default
    /// target is the most predicted non-background class.
    func testRegionTargetsSteerTheMap() throws {
        let checkpoint = try ISBICheckpoint.trained.get()
        let image = ISBICheckpoint.folder.appendingPathComponent("images/slice03.png")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-explain-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        var mask = [UInt8](repeating: 0, count: 512 * 512)
        for y in 0..<128 { for x in 0..<128 { mask[y * 512 + x] = 255 } }
        let maskURL = root.appendingPathComponent("corner.png")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try ImageCodec.write(Image(width: 512, height: 512, channels: 1, samples: .uint8(mask)), to: maskURL)

        func explain(_ configure: (inout ExplainOptions) -> Void, _ name: String) throws -> ([Float], ExplainRecord) {
            var o = ExplainOptions()
            o.outputs = [.raw]
            o.rawFormat = .npy
            configure(&o)
            let run = try ExplainRun(
                model: checkpoint, options: o, out: root.appendingPathComponent(name))
            run.console = .quiet
            let record = try XCTUnwrap(run.run(inputs: [image.path]).records.first)
            XCTAssertEqual(record.status, .done, record.error ?? "")
            let data = try Data(contentsOf: run.outputURL(.raw, relative: "slice03.png"))
            let floats = data.suffix(512 * 512 * 4).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            return (floats, record)
        }
        func cornerShare(_ heat: [Float]) -> Double {
            var inside: Float = 0
            for y in 0..<128 { for x in 0..<128 { inside += heat[y * 512 + x] } }
            return Double(inside / heat.reduce(0, +))
        }
        let (whole, wholeRecord) = try explain({ _ in }, "default")
        XCTAssertEqual(wholeRecord.classIndex, 1, "the most predicted class other than 0")
        let (boxed, boxRecord) = try explain(
            {
                $0.box = PixelWindow(x: 0, y: 0, width: 128, height: 128); $0.targetClass = "1"
            }, "box")
        let (masked, maskRecord) = try explain(
            {
                $0.targetMask = maskURL; $0.targetClass = "1"
            }, "mask")
        let (layerCAM, _) = try explain(
            {
                $0.box = PixelWindow(x: 0, y: 0, width: 128, height: 128); $0.targetClass = "1"
                $0.method = .layercam
            }, "layercam")
        XCTAssertEqual(boxRecord.regionPixels, 128 * 128)
        XCTAssertEqual(maskRecord.regionPixels, 128 * 128)
        XCTAssertEqual(boxRecord.score!, maskRecord.score!, accuracy: 1e-3 * abs(boxRecord.score!))
        XCTAssertEqual(boxed, masked)
        print(
            String(
                format: "corner share: Grad-CAM whole-image target %.3f, corner box %.3f; Layer-CAM corner box %.3f",
                cornerShare(whole), cornerShare(boxed), cornerShare(layerCAM)))
        // The corner is 1/16 of the image, a uniform map's share (the baseline both bars are far from).
        XCTAssertGreaterThan(cornerShare(layerCAM), 0.95)
        XCTAssertLessThan(cornerShare(whole), 0.2)
        for i in stride(from: 0, to: whole.count, by: 101) { XCTAssertEqual(boxed[i], whole[i], accuracy: 1e-3) }
    }

    /// `--compare` with `--metrics`: each method's folder, the table with the random map's row, and a rerun that
    /// finds every image done and reports the same scores (read back, not recomputed).
    func testComparisonRanksMethodsBesideARandomMapAndResumes() throws {
        let checkpoint = try ISBICheckpoint.trained.get()
        let image = ISBICheckpoint.folder.appendingPathComponent("images/slice05.png")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-compare-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        var options = ExplainOptions()
        options.compare = [.gradcam, .eigencam]
        options.metrics = [.deletion]
        options.targetClass = "0"
        options.outputs = [.heatmap]
        let comparison = try ExplainComparison(model: checkpoint, options: options, out: out)
        comparison.console = .quiet
        let first = try comparison.run(inputs: [image.path])
        XCTAssertEqual(first.failed, 0)
        XCTAssertEqual(Set(first.rows.map(\.method)), ["gradcam", "eigencam", "random"])
        XCTAssertEqual(first.rows.map(\.images), [1, 1, 1])
        let deletion = first.rows.map { $0.scores["deletion"] ?? .nan }
        XCTAssertEqual(deletion, deletion.sorted(), "rows best first (deletion: lower is better)")
        print(
            "ISBI test model, slice05, deletion: "
                + first.rows.map { "\($0.method) \($0.scores["deletion"] ?? .nan)" }.joined(separator: ", "))
        for method in ["gradcam", "eigencam"] {
            XCTAssertTrue(
                FileManager.default.fileExists(atPath: out.appendingPathComponent("\(method)/heatmap/slice05.png").path)
            )
        }
        let csv = try String(contentsOf: out.appendingPathComponent("compare.csv"), encoding: .utf8)
        XCTAssertTrue(csv.hasPrefix("method,images,failed,deletion,seconds_per_image\n"), csv)
        let again = try comparison.run(inputs: [image.path])
        XCTAssertEqual(again.runs.flatMap { $0.summary.records.map(\.status) }, [.existing, .existing])
        XCTAssertEqual(again.rows.map(\.scores), first.rows.map(\.scores))
    }
}
