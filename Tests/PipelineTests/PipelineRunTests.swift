import Foundation
import TesseraData
import TesseraInference
import TesseraRun
import TestSupport
import XCTest

/// The committed samples are what `tessera samples generate` makes; a small pipeline over them trains, segments,
/// explains, writes a self-contained report, and a rerun resumes instead of starting over.
final class PipelineRunTests: XCTestCase {
    let root = SharedFixtures.packageRoot

    func testCommittedSamplesAreTheGeneratedOnes() throws {
        let fresh = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-samples-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: fresh) }
        let files =
            try CellSampleSet.generate(into: fresh, seed: 0)
            + ShapeSampleSet.generate(into: fresh.appendingPathComponent("shapes"), seed: 0)
        var bytes = 0
        for url in files {
            let relative = url.path.replacingOccurrences(of: fresh.path + "/", with: "")
            let committed = try Data(contentsOf: root.appendingPathComponent("samples/" + relative))
            XCTAssertEqual(committed, try Data(contentsOf: url), "samples/\(relative) differs from a fresh generation")
            bytes += committed.count
        }
        XCTAssertLessThan(bytes, 5 << 20)
        // Every mask holds the three classes; the test images are JPEG.
        let mask = try MaskDecoder(kind: .label, classes: 3).labels(
            of: root.appendingPathComponent("samples/train/masks/train00.png"))
        XCTAssertEqual(Set(mask.ids), [0, 1, 2])
        XCTAssertEqual(
            try ImageCodec.info(of: root.appendingPathComponent("samples/test/images/test00.jpg")).format, .jpeg)
    }

    func testPipelineRunsResumesAndReports() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-run-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let samples = root.appendingPathComponent("samples").path
        let yaml = """
            name: tiny
            ingest: {images: \(samples)/train/images, masks: \(samples)/train/masks, mask_kind: label, classes: 3,
                     class_names: [background, cell, nucleus], crop: 64}
            model: {arch: unet, depth: 2, width: 4}
            train: {steps: 12, batch: 2, val_every: 6, seed: 1}
            segment: {inputs: [\(samples)/test/images], outputs: [mask, overlay], masks: \(samples)/test/masks}
            explain: {inputs: [\(samples)/test/images/test00.jpg, \(samples)/test/images/test01.jpg], class: cell}
            """
        let config = try PipelineReader(file: "tiny.yaml").parse(yaml, name: "tiny")
        let run = PipelineRun(config: config, runDirectory: out)
        run.log = { _ in }
        let first = try run.run()
        XCTAssertEqual(first.training?.steps, 12)
        XCTAssertEqual(first.segment?.records.count, 8)
        XCTAssertEqual(first.explain?.records.filter { $0.status == .done }.count, 2)
        XCTAssertEqual(first.failures, 0)
        XCTAssertEqual(first.stageSeconds.map(\.0), ["train", "segment", "explain"])

        let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertFalse(
            html.contains("http://") && html.contains("<script"), "the report loads nothing from the network")
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 2, "loss and metric curves")
        let images = html.components(separatedBy: "src=\"data:image/png;base64,").dropFirst()
        XCTAssertEqual(images.count, 8 + 2, "8 segmentation overlays and 2 Grad-CAM overlays")
        // Each embedded image decodes.
        for chunk in images {
            let data = try XCTUnwrap(Data(base64Encoded: String(chunk.prefix { $0 != "\"" })))
            XCTAssertNoThrow(try ImageCodec.decode(data, file: "embedded"))
        }
        XCTAssertTrue(html.contains("tiny") && html.contains("mean_dice"))

        // The report as a browser shows it: not blank (a blank page, rendered the same way, is).
        if let browser = ReportScreenshot.browser() {
            let shot = try ReportScreenshot.render(
                out.appendingPathComponent("report.html").absoluteString, browser: browser)
            let seen = ReportScreenshot.content(of: shot)
            print(
                String(
                    format: "report screenshot: %.1f%% non-background, %d colours", seen.nonBackground * 100,
                    seen.colours))
            XCTAssertEqual([shot.width, shot.height], [1000, 3000])
            XCTAssertGreaterThan(seen.nonBackground, 0.05, "share of the screenshot that is not background")
            XCTAssertGreaterThan(seen.colours, 32, "distinct colours (text, charts, overlays)")
            let blank = ReportScreenshot.content(of: try ReportScreenshot.render("about:blank", browser: browser))
            XCTAssertEqual(blank.nonBackground, 0, "the check sees a blank page as blank")
            XCTAssertEqual(blank.colours, 1)
        }

        // Run again: training is complete, every image is already done.
        let second = try run.run()
        XCTAssertEqual(second.training?.steps, 12)
        XCTAssertEqual(second.segment?.records.filter { $0.status == .existing }.count, 8)
        XCTAssertEqual(second.explain?.records.filter { $0.status == .existing }.count, 2)

        // More training: the best checkpoint changes, so segment and explain recompute with it instead of
        // reporting the old model's outputs.
        let longer = try PipelineReader(file: "tiny.yaml").parse(yaml, name: "tiny", overrides: ["train.steps=24"])
        let before = try OutputProvenance.read(in: out.appendingPathComponent("segment"))?.modelSHA256
        let third = try PipelineRun(config: longer, runDirectory: out).run()
        XCTAssertEqual(third.training?.steps, 24)
        let best = out.appendingPathComponent("train/best.safetensors")
        let after = try OutputProvenance.read(in: out.appendingPathComponent("segment"))?.modelSHA256
        XCTAssertEqual(after, try OutputProvenance.sha256(of: best))
        if after != before {
            XCTAssertEqual(third.segment?.records.filter { $0.status == .done }.count, 8, "the new model's masks")
            XCTAssertEqual(third.explain?.records.filter { $0.status == .done }.count, 2)
        }
        // Other settings for a run folder's training are refused, naming them.
        let other = try PipelineReader(file: "tiny.yaml").parse(yaml, name: "tiny", overrides: ["train.batch=3"])
        XCTAssertThrowsError(try PipelineRun(config: other, runDirectory: out).run()) {
            XCTAssertTrue("\($0)".contains("batch (was 2, now 3)"), "\($0)")
        }
    }
}
