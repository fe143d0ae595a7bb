import Foundation
import TesseraCheckpoint
import TesseraConsole
import TesseraData
import TesseraExplain
import TesseraInference
import TesseraObjects
import TesseraRun
import TesseraTraining
import TestSupport
import XCTest

/// The quickstart recipe's model (pipelines/quickstart.yaml: U-Net depth 3, width 16, 240 steps), trained once
/// per test run (about 25 s).
enum QuickstartCheckpoint {
    static let trained: Result<URL, Error> = Result {
        let root = SharedFixtures.packageRoot
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-qs-\(UUID().uuidString)")
        let yaml = try String(contentsOf: root.appendingPathComponent("pipelines/quickstart.yaml"), encoding: .utf8)
        // The recipe's training section as the pipeline reads it, with its sample paths made absolute.
        let config = try PipelineReader(file: "quickstart.yaml").parse(
            yaml.replacingOccurrences(of: " samples/", with: " \(root.path)/samples/"), name: "quickstart")
        var c = try XCTUnwrap(config.training)
        let trainer = TrainRun(config: c, runDirectory: run)
        trainer.log = { _ in }
        _ = try trainer.run()
        return run.appendingPathComponent("best.safetensors")
    }
}

final class InstanceSegmentTests: XCTestCase {
    var samples: URL { SharedFixtures.packageRoot.appendingPathComponent("samples") }

    /// Object id per pixel and class per id of an instance output and its table.
    func objects(_ out: URL, _ stem: String, ext: String = "png") throws -> (ids: [UInt32], classes: [String]) {
        let image = try ImageCodec.decode(out.appendingPathComponent("instances/\(stem).\(ext)"))
        let ids = (0..<(image.width * image.height)).map {
            UInt32(image.sample(x: $0 % image.width, y: $0 / image.width, channel: 0))
        }
        let rows = try String(contentsOf: out.appendingPathComponent("objects/\(stem).csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst()
        return (ids, rows.map { String($0.split(separator: ",")[1]) })
    }

    /// The acceptance bar on the generated samples: with the quickstart model, the nuclei found in each test image
    /// are the generator's nuclei, one for one (count equal in every image, object F1 at IoU 0.5 >= 0.95 against
    /// the generator's own nucleus ids). The trivial baseline, thresholding the image at the midpoint of the
    /// nucleus and cell levels, is printed beside it.
    func testNucleiOfTheSamplesMatchTheGeneratorsTruth() throws {
        let checkpoint = try QuickstartCheckpoint.trained.get()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-inst-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        var o = SegmentOptions()
        o.instances = InstanceSettings()
        o.outputs = [.mask, .overlay]
        o.masks = samples.appendingPathComponent("test/masks")
        let summary = try SegmentRun(checkpoint: checkpoint, options: o, out: out).run(
            inputs: [samples.appendingPathComponent("test/images").path])
        XCTAssertEqual(summary.records.count, 8)
        let first = CellSampleSet.parts[0].count
        var f1s: [Double] = [], baselines: [Double] = []
        for (i, record) in summary.records.enumerated() {
            let truth = CellSample(width: 128, height: 128, seed: 0, index: first + i)
            let stem = String(format: "test%02d", i)
            XCTAssertEqual(record.path, stem + ".jpg")
            let (ids, classes) = try objects(out, stem)
            let nuclei = ids.map { $0 != 0 && classes[Int($0) - 1] == "nucleus" ? $0 : 0 }
            XCTAssertEqual(classes.filter { $0 == "nucleus" }.count, truth.nuclei, "nuclei of \(stem)")
            XCTAssertEqual(record.objects?[2], truth.nuclei)
            let f1 = ReferenceScores(truth: truth.nucleusIDs, prediction: nuclei, width: 128, height: 128).objectF1At50
            f1s.append(f1)
            // Baseline: pixels brighter than the midpoint of the levels (0.32-0.48 cells, 0.72-0.92 nuclei).
            let bright = truth.pixels.map { UInt16($0 > 153 ? 2 : 0) }
            let found = Instances(mask: bright, width: 128, height: 128, settings: InstanceSettings())
            baselines.append(
                ReferenceScores(truth: truth.nucleusIDs, prediction: found.ids, width: 128, height: 128).objectF1At50)
        }
        let mean = f1s.reduce(0, +) / Double(f1s.count), baseline = baselines.reduce(0, +) / Double(baselines.count)
        print(
            String(
                format: "nucleus object F1@0.5: %.4f (min %.4f); threshold baseline %.4f", mean, f1s.min()!, baseline))
        XCTAssertGreaterThanOrEqual(mean, 0.95)
        XCTAssertGreaterThan(mean, baseline)
        // The report carries the object scores per image and overall.
        for key in ["rand_error", "vi_split", "vi_merge", "object_f1_50", "average_precision"] {
            XCTAssertNotNil(summary.metrics?[key], key)
            XCTAssertNotNil(summary.records[0].metrics?[key], key)
        }
        let csv = try String(contentsOf: out.appendingPathComponent("report.csv"), encoding: .utf8)
        XCTAssertTrue(
            csv.hasPrefix(
                "path,status,width,height,pixels_background,pixels_cell,pixels_nucleus,objects_cell,objects_nucleus"))

        // Run again: every image exists; counts and scores come back from the saved files, the same.
        let again = try SegmentRun(checkpoint: checkpoint, options: o, out: out).run(
            inputs: [samples.appendingPathComponent("test/images").path])
        XCTAssertEqual(again.records.filter { $0.status == .existing }.count, 8)
        XCTAssertEqual(again.records.map(\.objects), summary.records.map(\.objects))
        for key in ["rand_error", "object_f1_50", "average_precision"] {
            XCTAssertEqual(again.metrics?[key] ?? -1, summary.metrics?[key] ?? 1, accuracy: 1e-12, key)
        }
    }

    /// A TIFF streamed in 256-pixel chunks (objects labelled block by block, provisional labels spilled to disk and
    /// rewritten as tiles) gives the label image and table of the same image done whole as PNG.
    func testStreamedInstancesEqualTheWholeImages() throws {
        let checkpoint = try QuickstartCheckpoint.trained.get()
        let folder = try TemporaryFolder()
        let sample = CellSample(width: 700, height: 530, seed: 3, index: 0)
        try FileManager.default.createDirectory(at: folder.file("in"), withIntermediateDirectories: true)
        try ImageCodec.write(sample.image, to: folder.file("in/cells.png"))
        try TIFFWriter.write([sample.image], to: folder.file("in/cells.tif"))
        var o = SegmentOptions()
        o.instances = InstanceSettings()
        o.chunk = 256
        let whole = try SegmentRun(checkpoint: checkpoint, options: o, out: folder.file("png")).run(
            inputs: [folder.file("in/cells.png").path])
        let streamed = try SegmentRun(checkpoint: checkpoint, options: o, out: folder.file("tif")).run(
            inputs: [folder.file("in/cells.tif").path])
        XCTAssertEqual(whole.failed + streamed.failed, 0)
        let a = try objects(folder.file("png"), "cells"), b = try objects(folder.file("tif"), "cells", ext: "tif")
        XCTAssertGreaterThan(a.classes.count, 100)
        XCTAssertEqual(a.ids, b.ids)
        XCTAssertEqual(
            try Data(contentsOf: folder.file("png/objects/cells.csv")),
            try Data(contentsOf: folder.file("tif/objects/cells.csv")))
        XCTAssertEqual(whole.records[0].objects, streamed.records[0].objects)
        // Nothing but the outputs is left in the folders (no scratch file).
        let left = try FileManager.default.contentsOfDirectory(atPath: folder.file("tif/instances").path)
        XCTAssertEqual(left, ["cells.tif"])
        // The watershed splits at least as many objects, and never fewer pixels are objects. Streamed, it works
        // on bands of 256 rows (with 128 rows of halo) and stitches the objects that cross them: the same label
        // image and table as the whole PNG image's watershed.
        o.instances?.method = .watershed
        let split = try SegmentRun(checkpoint: checkpoint, options: o, out: folder.file("ws")).run(
            inputs: [folder.file("in/cells.tif").path])
        let splitWhole = try SegmentRun(checkpoint: checkpoint, options: o, out: folder.file("wsp")).run(
            inputs: [folder.file("in/cells.png").path])
        XCTAssertEqual(split.failed + splitWhole.failed, 0)
        let c = try objects(folder.file("ws"), "cells", ext: "tif"), d = try objects(folder.file("wsp"), "cells")
        XCTAssertGreaterThan(c.classes.count, a.classes.count)
        XCTAssertEqual(c.ids.filter { $0 != 0 }.count, a.ids.filter { $0 != 0 }.count)
        XCTAssertEqual(c.ids, d.ids)
        XCTAssertEqual(
            try Data(contentsOf: folder.file("ws/objects/cells.csv")),
            try Data(contentsOf: folder.file("wsp/objects/cells.csv")))
        let crossing = Set(
            (0..<700).compactMap { x -> UInt32? in
                let above = c.ids[255 * 700 + x], below = c.ids[256 * 700 + x]
                return above != 0 && above == below ? above : nil
            })
        XCTAssertGreaterThan(crossing.count, 3, "objects across the first band edge, one id each")
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: folder.file("ws/instances").path), ["cells.tif"],
            "the probabilities and ids the bands spilled are gone")
    }

    /// A 2-slice TIFF: a label page per slice, each the page of that slice segmented alone; the table numbers
    /// objects per slice with a `slice` column; the report counts both slices.
    func testSlicesGetAPageEach() throws {
        let checkpoint = try QuickstartCheckpoint.trained.get()
        let folder = try TemporaryFolder()
        try FileManager.default.createDirectory(at: folder.file("in"), withIntermediateDirectories: true)
        let pages = (0..<2).map { CellSample(width: 300, height: 200, seed: 5, index: $0).image }
        try TIFFWriter.write(pages, to: folder.file("in/stack.tif"))
        for (k, page) in pages.enumerated() { try TIFFWriter.write([page], to: folder.file("in/page\(k).tif")) }
        var o = SegmentOptions()
        o.instances = InstanceSettings()
        o.tiffPages = .slices
        let run = try SegmentRun(checkpoint: checkpoint, options: o, out: folder.file("out")).run(
            inputs: [folder.file("in").path])
        XCTAssertEqual(run.failed, 0)
        let stack = try PixelSource(url: folder.file("out/instances/stack.tif"), tiffPages: .slices) {
            try ImageCodec.decode($0)
        }
        XCTAssertEqual(stack.slices, 2)
        let rows = try String(contentsOf: folder.file("out/objects/stack.csv"), encoding: .utf8)
            .split(separator: "\n")
        XCTAssertTrue(rows[0].hasPrefix("slice,id,class,"))
        var total = 0
        for k in 0..<2 {
            let alone = try objects(folder.file("out"), "page\(k)", ext: "tif")
            let page = try stack.window(PixelWindow(x: 0, y: 0, width: 300, height: 200), slice: k)
            XCTAssertEqual(
                (0..<(300 * 200)).map { UInt32(page.sample(x: $0 % 300, y: $0 / 300, channel: 0)) }, alone.ids)
            XCTAssertEqual(rows.dropFirst().filter { $0.hasPrefix("\(k + 1),") }.count, alone.classes.count)
            total += alone.classes.count
        }
        let record = try XCTUnwrap(run.records.first { $0.path == "stack.tif" })
        XCTAssertEqual(record.objects?.reduce(0, +), total)
    }

    /// Instance truth masks (`--truth objects`): the generator's nucleus ids as 16-bit PNGs. Object scores
    /// only, the same from `segment` and `eval`, and what scoring the outputs by hand gives.
    func testObjectTruthMasks() throws {
        let checkpoint = try QuickstartCheckpoint.trained.get()
        let folder = try TemporaryFolder()
        let first = CellSampleSet.parts[0].count
        for sub in ["images", "masks"] {
            try FileManager.default.createDirectory(at: folder.file(sub), withIntermediateDirectories: true)
        }
        for i in 0..<3 {
            let sample = CellSample(width: 128, height: 128, seed: 0, index: first + i)
            try ImageCodec.write(sample.image, to: folder.file("images/n\(i).png"))
            try ImageCodec.write(
                Image(width: 128, height: 128, channels: 1, samples: .uint16(sample.nucleusIDs.map { UInt16($0) })),
                to: folder.file("masks/n\(i).png"))
        }
        var o = SegmentOptions()
        o.instances = InstanceSettings()
        o.masks = folder.file("masks")
        o.truth = .objects
        let summary = try SegmentRun(checkpoint: checkpoint, options: o, out: folder.file("out")).run(
            inputs: [folder.file("images").path])
        XCTAssertEqual(summary.failed, 0)
        let metrics = try XCTUnwrap(summary.metrics)
        XCTAssertNil(metrics["pixel_accuracy"], "no pixel metrics against object ids")
        // Every object counts, cells included (the truth has nuclei only): precision well below recall.
        XCTAssertEqual(try XCTUnwrap(metrics["object_recall_50"]), 1, accuracy: 1e-12)
        XCTAssertLessThan(try XCTUnwrap(metrics["object_precision_50"]), 0.7)
        var byHand: [ReferenceScores] = []
        for i in 0..<3 {
            let (ids, _) = try objects(folder.file("out"), "n\(i)")
            let truth = CellSample(width: 128, height: 128, seed: 0, index: first + i).nucleusIDs
            byHand.append(ReferenceScores(truth: truth, prediction: ids, width: 128, height: 128))
        }
        let eval = try Evaluation.run(
            checkpoint: checkpoint, images: folder.file("images"), masks: folder.file("masks"),
            inference: TiledInference(tile: 128), instances: InstanceSettings(), truth: .objects)
        for key in ["rand_error", "vi_split", "vi_merge", "object_f1_50", "average_precision"] {
            XCTAssertEqual(metrics[key] ?? -1, ReferenceScores.mean(byHand)[key] ?? 1, accuracy: 1e-12, key)
            XCTAssertEqual(eval.metrics[key] ?? -1, metrics[key] ?? 1, accuracy: 1e-9, key)
        }
        o.instances = nil
        XCTAssertThrowsError(try SegmentRun(checkpoint: checkpoint, options: o, out: folder.file("x")))
    }

    func testInstanceSettingsAreChecked() throws {
        let checkpoint = try QuickstartCheckpoint.trained.get()
        var o = SegmentOptions()
        o.instances = InstanceSettings()
        o.instances?.minSize = -1
        XCTAssertThrowsError(try SegmentRun(checkpoint: checkpoint, options: o, out: URL(fileURLWithPath: "/tmp/x"))) {
            XCTAssertTrue("\($0)".contains("min_size must be 0-4294967295, is -1"), "\($0)")
        }
        o.instances?.minSize = 0
        o.instances?.seedDepth = .nan
        XCTAssertThrowsError(try SegmentRun(checkpoint: checkpoint, options: o, out: URL(fileURLWithPath: "/tmp/x")))
    }
}

final class ExplainObjectTests: XCTestCase {
    /// `explain --object ID` targets exactly that object's pixels: from `segment --instances`' label image, or from
    /// the prediction's components (the same numbering); a missing id fails with the reason.
    func testExplainTargetsOneObject() throws {
        let checkpoint = try QuickstartCheckpoint.trained.get()
        let folder = try TemporaryFolder()
        let input = SharedFixtures.packageRoot.appendingPathComponent("samples/test/images/test00.jpg")
        var o = SegmentOptions()
        o.instances = InstanceSettings()
        _ = try SegmentRun(checkpoint: checkpoint, options: o, out: folder.file("seg")).run(inputs: [input.path])
        let rows = try String(contentsOf: folder.file("seg/objects/test00.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
        XCTAssertGreaterThan(rows.count, 5)
        for row in [rows[2], rows[rows.count - 1]] {
            let id = try XCTUnwrap(Int(row[0])), area = try XCTUnwrap(Int(row[2]))
            for mask in [folder.file("seg/instances/test00.png"), nil] {
                var e = ExplainOptions()
                e.object = id
                e.targetMask = mask
                let out = folder.file("exp-\(id)-\(mask == nil)")
                let run = try ExplainRun(model: checkpoint, options: e, out: out)
                run.console = .quiet
                let record = try XCTUnwrap(try run.run(inputs: [input.path]).records.first)
                XCTAssertEqual(record.regionPixels, area, "object \(id)")
                XCTAssertEqual(record.className, row[1])
            }
        }
        var e = ExplainOptions()
        e.object = 999
        let run = try ExplainRun(model: checkpoint, options: e, out: folder.file("none"))
        run.console = .quiet
        let record = try XCTUnwrap(try run.run(inputs: [input.path]).records.first)
        XCTAssertEqual(record.status, .failed)
        XCTAssertTrue(record.error?.contains("no object 999") ?? false, record.error ?? "")
    }
}
