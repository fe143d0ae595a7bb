import Foundation
import TesseraData
import TesseraEngine
import TesseraInference
import TestSupport
import XCTest

final class SegmentTests: XCTestCase {
    /// Shards of the same sorted list: disjoint, and together the whole list, for every n up to 7.
    func testShardsPartitionTheInputs() {
        let items = (0..<23).map { "image\($0)" }
        for n in 1...7 {
            let shards = (0..<n).map { Shard("\($0)/\(n)")!.select(items) }
            XCTAssertEqual(shards.flatMap { $0 }.sorted(), items.sorted(), "n = \(n)")
            XCTAssertEqual(Set(shards.flatMap { $0 }).count, items.count, "n = \(n): overlap")
        }
        XCTAssertNil(Shard("3/3"))
        XCTAssertNil(Shard("1/0"))
        XCTAssertNil(Shard("a/2"))
    }

    var isbi: URL { ISBICheckpoint.folder }

    /// `tessera segment --masks` reports the metrics `tessera eval` reports for the same checkpoint and slices.
    func testSegmentWithMasksReportsTheMetricsOfEval() throws {
        let checkpoint = try ISBICheckpoint.trained.get()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-seg-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        var o = SegmentOptions()
        o.masks = isbi.appendingPathComponent("masks")
        o.outputs = [.mask, .color, .overlay, .prob]
        let run = try SegmentRun(checkpoint: checkpoint, options: o, out: out)
        let summary = try run.run(inputs: [isbi.appendingPathComponent("images").path])
        let eval = try Evaluation.run(
            checkpoint: checkpoint, images: isbi.appendingPathComponent("images"),
            masks: isbi.appendingPathComponent("masks"))
        XCTAssertEqual(summary.records.count, 20)
        for key in ["pixel_accuracy", "mean_iou", "mean_dice", "dice_0", "iou_1"] {
            XCTAssertEqual(summary.metrics![key]!, eval.metrics[key]!, accuracy: 1e-12, key)
        }
        // The outputs decode to what was predicted: mask ids, palette, 16-bit probabilities summing to 1.
        let mask = try ImageCodec.decode(out.appendingPathComponent("slice03.png"))
        let record = summary.records.first { $0.path == "slice03.png" }!
        guard case .uint8(let ids) = mask.samples else { return XCTFail("8-bit mask expected") }
        XCTAssertEqual([0, 1].map { c in ids.filter { Int($0) == c }.count }, record.pixels)
        let p0 = try ImageCodec.decode(out.appendingPathComponent("prob/slice03_class0.png"))
        let p1 = try ImageCodec.decode(out.appendingPathComponent("prob/slice03_class1.png"))
        guard case .uint16(let a) = p0.samples, case .uint16(let b) = p1.samples else {
            return XCTFail("16-bit maps expected")
        }
        for i in stride(from: 0, to: a.count, by: 97) {
            XCTAssertEqual(Int(a[i]) + Int(b[i]), 65535, accuracy: 1)
            XCTAssertEqual(ids[i], a[i] > b[i] ? 0 : 1)
        }
        let report = try String(contentsOf: out.appendingPathComponent("report.csv"), encoding: .utf8)
        XCTAssertEqual(report.split(separator: "\n").count, 21)
    }

    /// Killed with SIGKILL part-way through 40 images and run again: all 40 outputs exist and decode in full, no
    /// temporary file is left, and the images finished before the kill are reported as existing, not recomputed.
    /// The process is stopped (SIGSTOP) as soon as 8 masks exist and checked to be still running before the kill,
    /// with 32 images to go, so the test cannot pass by a run that finished first.
    func testKilledRunFinishesOnRerunWithoutRecomputing() throws {
        let checkpoint = try ISBICheckpoint.trained.get()
        let binary = TesseraProcess.binary
        try TesseraProcess.requireFreshBinary()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-kill-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = root.appendingPathComponent("in"), out = root.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        let names = (0..<40).map { String(format: "image%02d", $0) }
        for (k, name) in names.enumerated() {
            try FileManager.default.createSymbolicLink(
                at: input.appendingPathComponent(name + ".png"),
                withDestinationURL: isbi.appendingPathComponent(String(format: "images/slice%02d.png", k % 20)))
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = [
            "segment", input.path, "--model", checkpoint.path, "--out", out.path, "--outputs", "mask,prob,overlay"
        ]
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        func masks() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []).filter { $0.hasPrefix("image") }
        }
        let deadline = Date().addingTimeInterval(300)
        while masks().count < 8 && process.isRunning && Date() < deadline { usleep(5_000) }
        kill(process.processIdentifier, SIGSTOP)
        let stillRunning = process.isRunning
        let before = Set(masks())
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertTrue(stillRunning, "the run ended before it could be killed")
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)
        XCTAssertGreaterThanOrEqual(before.count, 8)
        XCTAssertLessThan(before.count, 40)

        var o = SegmentOptions()
        o.outputs = [.mask, .prob, .overlay]
        let rerun = try SegmentRun(checkpoint: checkpoint, options: o, out: out)
        let summary = try rerun.run(inputs: [input.path])
        XCTAssertEqual(summary.records.count, 40)
        XCTAssertEqual(summary.failed, 0)
        // A mask present before the rerun might belong to an image whose other outputs were not all written yet:
        // those are recomputed; every other one is reported existing.
        let existing = Set(summary.records.filter { $0.status == .existing }.map(\.path))
        XCTAssertTrue(existing.isSubset(of: before))
        XCTAssertGreaterThanOrEqual(existing.count, before.count - 1)
        for name in names {
            for file in ["\(name).png", "prob/\(name)_class0.png", "prob/\(name)_class1.png", "overlay/\(name).png"] {
                XCTAssertNoThrow(try ImageCodec.decode(out.appendingPathComponent(file)), file)
            }
        }
        let leftovers = FileManager.default.enumerator(atPath: out.path)!.compactMap { $0 as? String }.filter {
            $0.contains(".tmp-")
        }
        XCTAssertEqual(leftovers, [], "temporary files left behind")
        let json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("report.json")))
            as! [String: Any]
        let s = json["summary"] as! [String: Double]
        XCTAssertEqual(s["existing"]!, Double(existing.count))
        XCTAssertEqual(s["done"]!, Double(40 - existing.count))
    }

    /// A truncated image among good ones: reported with its path and reason, the others are segmented; with
    /// `strict` the run stops at it.
    func testBadImageIsReportedAndTheRestGoOn() throws {
        let checkpoint = try ISBICheckpoint.trained.get()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-bad-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        for name in ["slice00", "slice02"] {
            try FileManager.default.copyItem(
                at: isbi.appendingPathComponent("images/\(name).png"),
                to: input.appendingPathComponent("\(name).png"))
        }
        let whole = try Data(contentsOf: isbi.appendingPathComponent("images/slice01.png"))
        try whole.prefix(whole.count / 3).write(to: input.appendingPathComponent("slice01.png"))
        let run = try SegmentRun(
            checkpoint: checkpoint, options: SegmentOptions(), out: dir.appendingPathComponent("out"))
        let summary = try run.run(inputs: [input.path])
        XCTAssertEqual(summary.records.map(\.status), [.done, .failed, .done])
        XCTAssertEqual(summary.failed, 1)
        let reason = summary.records[1].error ?? ""
        XCTAssertTrue(reason.contains("slice01.png"), reason)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/slice02.png").path))
        var strict = SegmentOptions()
        strict.strict = true
        let stopping = try SegmentRun(
            checkpoint: checkpoint, options: strict, out: dir.appendingPathComponent("strict"))
        XCTAssertThrowsError(try stopping.run(inputs: [input.path]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("strict/slice02.png").path))
    }
}
