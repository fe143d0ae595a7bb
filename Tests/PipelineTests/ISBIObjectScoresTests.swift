import Foundation
import TesseraData
import TesseraInference
import TesseraObjects
import TestSupport
import XCTest

/// The ISBI 2012 object scores of the 4 held-out slices of the recipe's split: the trained test checkpoint
/// against the trivial baseline of thresholding the slice (membranes are dark: pixels above the slice's mean are
/// cell), both made into objects as `eval --instances components` does.
final class ISBIObjectScoresTests: XCTestCase {
    static let heldOut = ["slice05", "slice07", "slice11", "slice19"]

    func testTheModelBeatsAThresholdOnVIAndObjectF1() throws {
        let isbi = ISBICheckpoint.folder
        let checkpoint = try ISBICheckpoint.trained.get()
        let folder = try TemporaryFolder()
        for sub in ["images", "masks"] {
            try FileManager.default.createDirectory(at: folder.file(sub), withIntermediateDirectories: true)
            for s in Self.heldOut {
                try FileManager.default.createSymbolicLink(
                    at: folder.file("\(sub)/\(s).png"),
                    withDestinationURL: isbi.appendingPathComponent("\(sub)/\(s).png"))
            }
        }
        let model = try Evaluation.run(
            checkpoint: checkpoint, images: folder.file("images"), masks: folder.file("masks"),
            instances: InstanceSettings())
        var baseline: [[String: Double]] = []
        for s in Self.heldOut {
            let image = try ImageCodec.decode(isbi.appendingPathComponent("images/\(s).png"))
            let truth = try MaskDecoder(kind: .binary).labels(of: isbi.appendingPathComponent("masks/\(s).png"))
            let n = image.width * image.height
            let values = (0..<n).map { image.sample(x: $0 % image.width, y: $0 / image.width, channel: 0) }
            let mean = Double(values.reduce(0, +)) / Double(n)
            let found = Instances(
                mask: values.map { UInt16(Double($0) > mean ? 1 : 0) }, width: image.width, height: image.height,
                settings: InstanceSettings())
            baseline.append(
                SegmentationAgreement(
                    prediction: found.ids, classes: found.objects.map(\.objectClass),
                    truthMask: truth.ids.map { UInt16(clamping: $0) }, width: image.width, height: image.height,
                    settings: InstanceSettings()
                ).metrics)
        }
        let trivial = SegmentationAgreement.mean(baseline)
        for key in ["rand_error", "vi_split", "vi_merge", "object_f1_50", "pixel_accuracy"] {
            print(
                String(
                    format: "ISBI held-out %@: model %.4f, threshold %.4f", key, model.metrics[key] ?? .nan,
                    trivial[key] ?? .nan))
        }
        // The 40-step test model leaves gaps in membranes (it merges cells: its Rand error, 0.23, is above the
        // threshold's 0.19; the 400-step recipe model's is 0.040, BENCHMARKS.md), but it already splits far less.
        func vi(_ m: [String: Double]) throws -> Double {
            try XCTUnwrap(m["vi_split"]) + XCTUnwrap(m["vi_merge"])
        }
        XCTAssertLessThan(try vi(model.metrics), try vi(trivial))
        XCTAssertGreaterThan(try XCTUnwrap(model.metrics["object_f1_50"]), try XCTUnwrap(trivial["object_f1_50"]))
        XCTAssertEqual(model.pairs, 4)
        // The membrane method floods the gaps that model leaves, so its cells merge far less (VI merge); on this
        // weak model it splits more (Rand error 0.27 against the components' 0.22), on the trained recipe models
        // it lowers the Rand error (0.045 -> 0.027, 0.091 -> 0.017 on the test slices: BENCHMARKS.md).
        var membrane = InstanceSettings()
        membrane.method = .membrane
        let flooded = try Evaluation.run(
            checkpoint: checkpoint, images: folder.file("images"), masks: folder.file("masks"), instances: membrane)
        print(
            String(
                format: "ISBI held-out, membrane instances: rand_error %.4f, vi_merge %.4f",
                flooded.metrics["rand_error"] ?? .nan, flooded.metrics["vi_merge"] ?? .nan))
        XCTAssertLessThan(
            try XCTUnwrap(flooded.metrics["vi_merge"]), try XCTUnwrap(model.metrics["vi_merge"]) / 2)
    }
}
